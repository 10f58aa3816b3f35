"""``python -m tests.bench [name ...]``: run the benchmarks; each prints its figures as JSON."""

import importlib
import sys

BENCHES = {"slack": "tests.bench.slack_ack", "engine": "tests.bench.engine_bench",
           "sandbox": "tests.bench.sandbox_bench",
           "lag-math": "tests.bench.lag_math_bench", "alerts": "tests.bench.alerts_bench",
           "upgrade": "tests.bench.upgrade_bench", "reassign": "tests.bench.reassign_bench",
           "lag-profile": "tests.bench.lag_profile", "lag-stream": "tests.bench.lag_stream_bench",
           "lag-cpu": "tests.bench.lag_cpu_bench", "lag-rss": "tests.bench.lag_rss_bench",
           "mirror": "tests.bench.mirror_bench", "offsets-read": "tests.bench.offsets_read_bench"}

names = [n for n in sys.argv[1:] if n in BENCHES] or list(BENCHES)  # other arguments are for the benches
for name in names:
    print(f"== {name}", flush=True)
    importlib.import_module(BENCHES[name]).main()
