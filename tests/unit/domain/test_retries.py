import pytest

from app.domain.retries import retry_delay


@pytest.mark.parametrize("try_number", [1, 2, 5])
def test_without_backoff_the_delay_is_fixed(try_number):
    assert retry_delay(try_number, 10, False, 3600) == 10


@pytest.mark.parametrize(
    ("try_number", "rand", "expected"),
    [(1, 0.0, 10), (1, 0.5, 15), (2, 0.0, 20), (3, 0.0, 40), (3, 0.99, 79.6), (4, 0.25, 100)],
)
def test_backoff_doubles_with_jitter_up_to_as_much_again(try_number, rand, expected):
    assert retry_delay(try_number, 10, True, 3600, rand=lambda: rand) == pytest.approx(expected)


def test_the_delay_never_exceeds_the_maximum():
    assert retry_delay(20, 10, True, 600, rand=lambda: 0.5) == 600
    assert retry_delay(1, 900, False, 600) == 600


@pytest.mark.parametrize("try_number", [1025, 1100, 10**6])
def test_a_try_past_a_thousand_doublings_gets_the_maximum_not_an_overflow(try_number):
    # the example: retries 1100, backoff, 1 ms base and maximum
    assert retry_delay(try_number, 0.001, True, 0.001) == 0.001
    assert retry_delay(try_number, 10, True, 3600, rand=lambda: 0.0) == 3600
