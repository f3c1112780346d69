"""Pure computation of the stats figures from challenge log attempts (no I/O)."""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

type Number = int | float


@dataclass(frozen=True)
class Attempt:
    """The parts of one challenge log record that the figures use.

    Optional measurements are ``None`` when the record leaves them out, e.g. ycaptcha
    never reports a solve time.
    """

    provider: str
    success: bool
    degraded: bool
    error_codes: tuple[str, ...] = ()
    solve_time_ms: Number | None = None
    token_age_ms: Number | None = None
    provider_latency_ms: Number | None = None


@dataclass(frozen=True)
class Distribution:
    """Nearest-rank percentiles of one measurement; ``None`` where there are no values."""

    samples: int
    p50: Number | None
    p95: Number | None
    max: Number | None


@dataclass(frozen=True)
class Figures:
    """The figures for one provider, or for all of them together."""

    count: int
    # Verified by the provider; a degraded acceptance (open policy, provider unreachable) is a
    # success for the visitor but not a verification, so it is counted apart, never here.
    verified_count: int
    verified_rate: float | None
    degraded_count: int
    # (code, records carrying it), most frequent first, ties by code.
    error_codes: tuple[tuple[str, int], ...]
    solve_time_ms: Distribution
    token_age_ms: Distribution
    provider_latency_ms: Distribution


def nearest_rank(sorted_values: Sequence[Number], percent: int) -> Number | None:
    """Return the ``percent``-th percentile of ascending ``sorted_values`` by nearest rank.

    Nearest-rank method: the result is the value at 1-based rank ``ceil(percent / 100 * n)``
    of the ``n`` sorted values, so it is always an observed value, never an interpolation
    (p50 of ``[1, 2, 3, 4]`` is 2, p95 of 20 values is the 19th). ``None`` for no values.
    """
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    if not sorted_values:
        return None
    # Integer ceiling: float products such as 0.95 * 40 can land just above a whole
    # number and pick the wrong rank.
    rank = -(-percent * len(sorted_values) // 100)
    return sorted_values[rank - 1]


def distribution(values: Iterable[Number | None]) -> Distribution:
    """Summarise the present values, skipping records that left the measurement out."""
    ordered = sorted(value for value in values if value is not None)
    return Distribution(
        samples=len(ordered),
        p50=nearest_rank(ordered, 50),
        p95=nearest_rank(ordered, 95),
        max=ordered[-1] if ordered else None,
    )


def error_code_counts(attempts: Iterable[Attempt]) -> tuple[tuple[str, int], ...]:
    """Count the records carrying each error code (a code repeated in one record counts once)."""
    counts = Counter(code for attempt in attempts for code in set(attempt.error_codes))
    return tuple(sorted(counts.items(), key=lambda pair: (-pair[1], pair[0])))


def compute(attempts: Sequence[Attempt]) -> Figures:
    """Compute the figures over ``attempts``, whichever providers they belong to."""
    count = len(attempts)
    verified_count = sum(1 for attempt in attempts if attempt.success and not attempt.degraded)
    return Figures(
        count=count,
        verified_count=verified_count,
        verified_rate=verified_count / count if count else None,
        degraded_count=sum(1 for attempt in attempts if attempt.degraded),
        error_codes=error_code_counts(attempts),
        solve_time_ms=distribution(attempt.solve_time_ms for attempt in attempts),
        token_age_ms=distribution(attempt.token_age_ms for attempt in attempts),
        provider_latency_ms=distribution(attempt.provider_latency_ms for attempt in attempts),
    )


@dataclass(frozen=True)
class Summary:
    """Figures per provider, in the order asked for, and over all of them together."""

    providers: tuple[tuple[str, Figures], ...]
    overall: Figures


def summarise(attempts_by_provider: Mapping[str, Sequence[Attempt]]) -> Summary:
    """Compute each provider's figures and the overall ones from the pooled attempts."""
    pooled = [attempt for attempts in attempts_by_provider.values() for attempt in attempts]
    return Summary(
        providers=tuple((name, compute(attempts)) for name, attempts in attempts_by_provider.items()),
        overall=compute(pooled),
    )
