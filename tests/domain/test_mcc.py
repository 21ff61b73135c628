"""The region → MCC table (ITU-T E.212) and the IMSI split."""

from __future__ import annotations

import phonenumbers
import pytest

from simgate.domain import mcc

# Golden values from the E.212 list; a country holding several codes maps to its primary one.
GOLDEN = {
    "IN": "404",  # also 405, 406
    "US": "310",  # also 311-316
    "GB": "234",  # also 235
    "DE": "262",
    "FR": "208",
    "CN": "460",  # also 461
    "JP": "440",  # also 441
    "AE": "424",  # also 430, 431
    "CA": "302",
    "MX": "334",
    "BR": "724",
    "AR": "722",
    "RU": "250",
    "KZ": "401",
    "AU": "505",
    "NZ": "530",
    "ZA": "655",
    "NG": "621",
    "EG": "602",
    "KE": "639",
    "ID": "510",
    "PH": "515",
    "VN": "452",
    "TH": "520",
    "MY": "502",
    "SG": "525",
    "KR": "450",
    "HK": "454",
    "TW": "466",
    "PK": "410",
    "BD": "470",
    "SA": "420",
    "TR": "286",
    "IT": "222",
    "ES": "214",
    "NL": "204",
    "PL": "260",
    "UA": "255",
    "SE": "240",
    "CH": "228",
    "PR": "330",
    "JE": "234",  # Crown dependencies are numbered under the UK's code
    "RE": "647",
    "XK": "221",
}


@pytest.mark.parametrize(("region", "code"), sorted(GOLDEN.items()))
def test_golden_values(region: str, code: str) -> None:
    assert mcc.of_region(region) == code


def test_every_region_phonenumbers_knows_is_decided() -> None:
    regions = set(phonenumbers.SUPPORTED_REGIONS) | {"001"}
    undecided = sorted(r for r in regions if r not in mcc.REGION_MCC and r not in mcc.NO_MCC)
    assert undecided == []
    assert not set(mcc.REGION_MCC) & mcc.NO_MCC
    assert set(mcc.REGION_MCC) <= set(phonenumbers.SUPPORTED_REGIONS)  # no stray keys
    # Geographic MCCs are 2xx-7xx; Diego Garcia's 995 is the one listed outside them.
    for code in mcc.REGION_MCC.values():
        assert len(code) == 3
        assert code.isdigit()
        assert code[0] in "234567" or code == "995"


def test_every_example_number_finds_its_country() -> None:
    """Each region's example numbers map to the MCC of the region they resolve to."""
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            number = e164.removeprefix("+")
            resolved = phonenumbers.region_code_for_number(example)
            assert resolved is not None, (region, number)
            assert mcc.of_number(number) == mcc.of_region(resolved) is not None, (region, number)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("91856321413", "404"),  # the vendor's pushSmsReport sample (spec §1.9)
        ("8613800138000", "460"),
        ("447700900123", "234"),
        ("4915112345678", "262"),
        ("33612345678", "208"),
        ("12015550123", "310"),
        ("14165550123", "302"),  # +1 shared: the number's range decides
        ("15551234567", "310"),  # +1 outside every range: the code's main region
        ("77012345678", "401"),  # +7 shared with Russia
        ("88213", None),  # non-geographic (satellite)
        ("999999999", None),  # no such country code
        ("", None),
    ],
)
def test_of_number(number: str, code: str | None) -> None:
    assert mcc.of_number(number) == code


@pytest.mark.parametrize(
    ("imsi", "expected"),
    [
        ("310150123456789", ("310", "150")),  # three-digit MNC country
        ("404451234567890", ("404", "45")),
        ("46000123", ("460", "00")),
        ("", None),
        ("1234", None),
        ("12x45", None),
    ],
)
def test_split_imsi(imsi: str, expected: tuple[str, str] | None) -> None:
    assert mcc.split_imsi(imsi) == expected
