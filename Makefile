# The two commands (see README.md): `make demo` runs it locally, `make test` runs every test.
.PHONY: demo test setup build bench fuzz

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh --browser

build:
	bash scripts/build.sh

# Size, cold start and the signed-in paths side by side with the peer gates (bench/all.mjs);
# bench/run.mjs has the worker's own scenarios (Bearer first use, RS256 and ES256).
bench:
	bash scripts/setup.sh --browser --bench && bash scripts/build.sh && node bench/all.mjs

# The property tests of every parser of untrusted input, far longer than `make test` runs them.
fuzz:
	bash scripts/setup.sh && PROPTEST_CASES=$${PROPTEST_CASES:-200000} cargo test --release fuzz -- --nocapture
