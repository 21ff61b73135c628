"""Hypothesis strategies shared by the codec tests.

The alphabets are spelled out here independently of ``simgate.codecs.gsm7`` (from the
TS 23.038 §6.2.1 / §6.2.1.1 tables) so a typo in the module's table cannot hide itself.
"""

from __future__ import annotations

from hypothesis import strategies as st

GSM7_BASIC_CHARS = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT_CHARS = "\x0c^{}\\[~]|€"
assert len(GSM7_BASIC_CHARS) == 127  # 128 codes minus ESC
assert len(set(GSM7_BASIC_CHARS + GSM7_EXT_CHARS)) == 137

gsm7_chars = st.sampled_from(GSM7_BASIC_CHARS + GSM7_EXT_CHARS)
gsm7_text = st.text(alphabet=gsm7_chars, max_size=700)

# Texts made of 'a' and '€' (1 and 2 septets) around the 153/160 limits: these are the
# ones where an escape pair lands on a part boundary.
gsm7_boundary_text = st.lists(st.sampled_from("a€"), min_size=140, max_size=480).map("".join)

# Any Unicode scalar value (Hypothesis excludes surrogates by default).
unicode_text = st.text(max_size=400)

# BMP and astral characters mixed around the 67/70 unit limits.
ucs2_boundary_text = st.lists(st.sampled_from("жa😀"), min_size=30, max_size=250).map("".join)

septets = st.binary(max_size=300).map(lambda b: bytes(x & 0x7F for x in b))
fill_bits = st.integers(min_value=0, max_value=6)
