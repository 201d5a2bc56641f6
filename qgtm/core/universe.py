"""The tradable universe: commodity ETFs with sector tags, from qgtm/data/universe.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources.abc import Traversable

import numpy as np

from qgtm.core.paths import PACKAGE_DATA_DIR

UNIVERSE_FILE: Traversable = PACKAGE_DATA_DIR / "universe.toml"


class UniverseError(ValueError):
    """The universe file is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """One ETF with its sector and the demo market's calibration for it."""

    symbol: str
    name: str
    sector: str
    annual_vol: float
    adv: int
    start_price: float


@dataclass(frozen=True, slots=True)
class Universe:
    """The ordered set of instruments plus the target correlation of their returns."""

    instruments: tuple[Instrument, ...]
    sectors: dict[str, str]
    correlation: np.ndarray

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols in file order."""
        return tuple(i.symbol for i in self.instruments)

    def get(self, symbol: str) -> Instrument:
        """The instrument for `symbol`; raises KeyError naming the symbol if unknown."""
        for inst in self.instruments:
            if inst.symbol == symbol:
                return inst
        raise KeyError(f"{symbol} is not in the universe")

    def sector_of(self, symbol: str) -> str:
        """Sector tag of `symbol`."""
        return self.get(symbol).sector

    def index_of(self, symbol: str) -> int:
        """Position of `symbol` in `symbols`."""
        return self.symbols.index(symbol)


def _nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues and re-normalise to unit diagonal (Higham-style, one pass)."""
    values, vectors = np.linalg.eigh(matrix)
    clipped = vectors @ np.diag(np.clip(values, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(clipped))
    return clipped / np.outer(scale, scale)


def _correlation_matrix(raw: dict, instruments: tuple[Instrument, ...]) -> np.ndarray:
    symbols = [i.symbol for i in instruments]
    n = len(symbols)
    cross = float(raw.get("cross_sector", 0.0))
    within = raw.get("within_sector", {})
    corr = np.full((n, n), cross)
    for a in range(n):
        for b in range(n):
            if instruments[a].sector == instruments[b].sector:
                corr[a, b] = float(within.get(instruments[a].sector, cross))
    for pair, value in raw.get("pairs", {}).items():
        left, _, right = pair.partition("/")
        if left not in symbols or right not in symbols:
            raise UniverseError(f"correlation pair {pair!r} names a symbol not in the universe")
        a, b = symbols.index(left), symbols.index(right)
        corr[a, b] = corr[b, a] = float(value)
    np.fill_diagonal(corr, 1.0)
    return _nearest_correlation(corr)


def parse_universe(text: str) -> Universe:
    """Build a Universe from the TOML text of a universe file."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UniverseError(f"universe file is not valid TOML: {exc}") from exc
    sectors = raw.get("sectors", {})
    instruments = []
    for symbol, spec in raw.get("instruments", {}).items():
        if spec.get("sector") not in sectors:
            raise UniverseError(f"{symbol}: sector {spec.get('sector')!r} is not declared")
        try:
            instruments.append(
                Instrument(
                    symbol=symbol,
                    name=str(spec["name"]),
                    sector=str(spec["sector"]),
                    annual_vol=float(spec["annual_vol"]),
                    adv=int(spec["adv"]),
                    start_price=float(spec["start_price"]),
                )
            )
        except KeyError as exc:
            raise UniverseError(f"{symbol}: missing field {exc.args[0]}") from exc
    if not instruments:
        raise UniverseError("universe file declares no instruments")
    ordered = tuple(instruments)
    return Universe(
        ordered, dict(sectors), _correlation_matrix(raw.get("correlation", {}), ordered)
    )


@cache
def load_universe(path: Traversable = UNIVERSE_FILE) -> Universe:
    """Read and validate the universe file (cached per path)."""
    if not path.is_file():
        raise UniverseError(f"universe file not found: {path}")
    return parse_universe(path.read_text(encoding="utf-8"))
