"""The data card's quality section, refreshed without rebuilding ntf-mini: KID as a reference table
(from stats.json) and the low-frequency content-parity probe, trained on real vs dcgan and scored on
every test folder; also redraws the card's real-sample grid across photographs. Rewrites
data_samples/README.md (the card) in place.

    python benchmarks/data_card_quality.py        # about 30 s
"""

from ntf_core.bench.card import refresh_quality_section
from ntf_core.mini import default_mini_root

for g, ap in refresh_quality_section(
    default_mini_root(), default_mini_root().parent / "README.md"
).items():
    print(f"{g:10s} {ap:.3f}")
