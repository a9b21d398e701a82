from hypothesis import given
from hypothesis import strategies as st

from pipelines.identifiers import (
    is_valid_nhs_number,
    is_valid_ni_number,
    is_valid_upn,
    nhs_check_digit,
    upn_check_letter,
)


def test_known_nhs_numbers():
    # 943 476 5919 is the NHS's published example of a valid number.
    assert is_valid_nhs_number("9434765919")
    assert is_valid_nhs_number("943 476 5919")
    assert not is_valid_nhs_number("9434765918")
    assert not is_valid_nhs_number("943476591")
    assert not is_valid_nhs_number(None)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_nhs_single_digit_change_is_caught(body):
    check = nhs_check_digit(body)
    if check is None:
        return
    number = body + str(check)
    assert is_valid_nhs_number(number)
    for i in range(10):
        for d in "0123456789":
            if d != number[i]:
                assert not is_valid_nhs_number(number[:i] + d + number[i + 1 :])


def test_ni_number_format():
    assert is_valid_ni_number("AB123456C")
    assert is_valid_ni_number("ab 12 34 56 c")
    assert not is_valid_ni_number("AB123456E")  # suffix A-D only
    assert not is_valid_ni_number("DA123456A")  # D never first
    assert not is_valid_ni_number("AO123456A")  # O never second
    assert not is_valid_ni_number("GB123456A")  # unused prefix
    assert not is_valid_ni_number("")


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_upn_check_letter_roundtrip(body):
    upn = upn_check_letter(body) + body
    assert is_valid_upn(upn)
    wrong = "A" if upn[0] != "A" else "B"
    assert not is_valid_upn(wrong + body)
