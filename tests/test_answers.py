from sgpo.tasks.answers import extract_first_integer, integers_match, normalize_integer


def test_normalize_integer():
    assert normalize_integer("+007") == "7"
    assert normalize_integer("-0") == "0"
    assert normalize_integer("-012") == "-12"
    assert normalize_integer("1.5") is None
    assert normalize_integer("") is None


def test_extract_first_integer():
    assert extract_first_integer("357") == "357"
    assert extract_first_integer("x = -42, not 7") == "-42"
    assert extract_first_integer("no digits") is None


def test_huge_numbers_compare_without_int_conversion():
    big = "9" * 100_000
    assert not integers_match(big, "9")
    assert integers_match("1" + "0" * 50, "1" + "0" * 50)


def test_unicode_digits_are_not_ascii_integers():
    assert not integers_match("\u0663", "3")  # ARABIC-INDIC DIGIT THREE
