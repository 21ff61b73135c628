"""Mobile country codes (ITU-T E.212): a number's country → its MCC, and an IMSI's MCC/MNC.

The table maps each region phonenumbers knows (ISO 3166-1 alpha-2, plus its few extra codes
such as AC, TA and XK) to the geographic MCC the ITU assigned to that country or territory in
the E.212 list. Where a country holds several codes (India 404/405/406, the United States
310-316, the United Kingdom 234/235, Japan 440/441, China 460/461, the UAE 424/430/431) the
primary, lowest one is kept: a push names the country, not the network. Territories without
a code of their own use the code their networks are numbered under (Guernsey, Jersey and the
Isle of Man 234; Åland 244; Svalbard 242; Christmas, Cocos and Norfolk Islands 505; Mayotte
647; Ascension and Tristan da Cunha 658; Guam and the Northern Marianas 310; Western Sahara
604; Palestine 425; Caribbean Netherlands and Sint Maarten 362; Saint Barthélemy and Saint
Martin 340). Regions with no MCC at all are listed in NO_MCC, so every region is decided.
"""

from __future__ import annotations

import functools
from types import MappingProxyType
from typing import Final

import phonenumbers

UNKNOWN: Final = "-1"  # how the itniotech samples write an unknown MCC or MNC (spec §1.9)

# Region → primary MCC (ITU-T E.212 geographic codes).
REGION_MCC: Final = MappingProxyType(
    {
        # Europe (2xx)
        "GR": "202", "NL": "204", "BE": "206", "FR": "208", "MC": "212", "AD": "213",
        "ES": "214", "HU": "216", "BA": "218", "HR": "219", "RS": "220", "XK": "221",
        "IT": "222", "VA": "225", "RO": "226", "CH": "228", "CZ": "230", "SK": "231",
        "AT": "232", "GB": "234", "GG": "234", "JE": "234", "IM": "234", "DK": "238",
        "SE": "240", "NO": "242", "SJ": "242", "FI": "244", "AX": "244", "LT": "246",
        "LV": "247", "EE": "248", "RU": "250", "UA": "255", "BY": "257", "MD": "259",
        "PL": "260", "DE": "262", "GI": "266", "PT": "268", "LU": "270", "IE": "272",
        "IS": "274", "AL": "276", "MT": "278", "CY": "280", "GE": "282", "AM": "283",
        "BG": "284", "TR": "286", "FO": "288", "GL": "290", "SM": "292", "SI": "293",
        "MK": "294", "LI": "295", "ME": "297",
        # North America and the Caribbean (3xx)
        "CA": "302", "PM": "308", "US": "310", "GU": "310", "MP": "310", "PR": "330",
        "VI": "332", "MX": "334", "JM": "338", "GP": "340", "MQ": "340", "BL": "340",
        "MF": "340", "BB": "342", "AG": "344", "KY": "346", "VG": "348", "BM": "350",
        "GD": "352", "MS": "354", "KN": "356", "LC": "358", "VC": "360", "CW": "362",
        "BQ": "362", "SX": "362", "AW": "363", "BS": "364", "AI": "365", "DM": "366",
        "CU": "368", "DO": "370", "HT": "372", "TT": "374", "TC": "376",
        # Asia (4xx)
        "AZ": "400", "KZ": "401", "BT": "402", "IN": "404", "PK": "410", "AF": "412",
        "LK": "413", "MM": "414", "LB": "415", "JO": "416", "SY": "417", "IQ": "418",
        "KW": "419", "SA": "420", "YE": "421", "OM": "422", "AE": "424", "IL": "425",
        "PS": "425", "BH": "426", "QA": "427", "MN": "428", "NP": "429", "IR": "432",
        "UZ": "434", "TJ": "436", "KG": "437", "TM": "438", "JP": "440", "KR": "450",
        "VN": "452", "HK": "454", "MO": "455", "KH": "456", "LA": "457", "CN": "460",
        "TW": "466", "KP": "467", "BD": "470", "MV": "472",
        # Oceania and South-East Asia (5xx)
        "MY": "502", "AU": "505", "CX": "505", "CC": "505", "NF": "505", "ID": "510",
        "TL": "514", "PH": "515", "TH": "520", "SG": "525", "BN": "528", "NZ": "530",
        "NR": "536", "PG": "537", "TO": "539", "SB": "540", "VU": "541", "FJ": "542",
        "WF": "543", "AS": "544", "KI": "545", "NC": "546", "PF": "547", "CK": "548",
        "WS": "549", "FM": "550", "MH": "551", "PW": "552", "TV": "553", "TK": "554",
        "NU": "555",
        # Africa (6xx)
        "EG": "602", "DZ": "603", "MA": "604", "EH": "604", "TN": "605", "LY": "606",
        "GM": "607", "SN": "608", "MR": "609", "ML": "610", "GN": "611", "CI": "612",
        "BF": "613", "NE": "614", "TG": "615", "BJ": "616", "MU": "617", "LR": "618",
        "SL": "619", "GH": "620", "NG": "621", "TD": "622", "CF": "623", "CM": "624",
        "CV": "625", "ST": "626", "GQ": "627", "GA": "628", "CG": "629", "CD": "630",
        "AO": "631", "GW": "632", "SC": "633", "SD": "634", "RW": "635", "ET": "636",
        "SO": "637", "DJ": "638", "KE": "639", "TZ": "640", "UG": "641", "BI": "642",
        "MZ": "643", "ZM": "645", "MG": "646", "RE": "647", "YT": "647", "ZW": "648",
        "NA": "649", "MW": "650", "LS": "651", "BW": "652", "SZ": "653", "KM": "654",
        "ZA": "655", "ER": "657", "SH": "658", "AC": "658", "TA": "658", "SS": "659",
        # South and Central America (7xx)
        "BZ": "702", "GT": "704", "SV": "706", "HN": "708", "NI": "710", "CR": "712",
        "PA": "714", "PE": "716", "AR": "722", "BR": "724", "CL": "730", "CO": "732",
        "VE": "734", "BO": "736", "GY": "738", "EC": "740", "GF": "742", "PY": "744",
        "SR": "746", "UY": "748", "FK": "750",
        # British Indian Ocean Territory (Diego Garcia)
        "IO": "995",
    }
)  # fmt: skip

# phonenumbers' "001" is its region for non-geographic numbering (satellite, UIFN, ...):
# such a number names no country.
NO_MCC: Final = frozenset({"001"})

# MCCs whose MNCs are three digits (3GPP TS 23.003 §2.2: the length is set per country).
MNC3_MCC: Final = frozenset(
    {"302", "310", "311", "312", "313", "316", "334", "338", "342", "344", "346", "348"}
    | {"354", "356", "358", "360", "365", "376", "405", "708", "722", "732"}
)


def of_region(region: str) -> str | None:
    """The primary MCC of a region code, None when it has none."""
    return REGION_MCC.get(region)


@functools.lru_cache(maxsize=65536)
def of_number(number: str) -> str | None:
    """The MCC of the country a normalised number (digits, no ``+``) belongs to, or None.

    Where a country code is shared (+1, +7, +44...) the number's own range decides; a number
    outside every known range falls back to the country code's main region.
    """
    try:
        parsed = phonenumbers.parse("+" + number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if region is None and parsed.country_code is not None:
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    return None if region is None else of_region(region)


def split_imsi(imsi: str) -> tuple[str, str] | None:
    """(MCC, MNC) from an IMSI (3GPP TS 23.003 §2.2), None when it is no IMSI."""
    if len(imsi) < 5 or not imsi.isascii() or not imsi.isdigit():
        return None
    mcc = imsi[:3]
    return mcc, imsi[3:6] if mcc in MNC3_MCC else imsi[3:5]
