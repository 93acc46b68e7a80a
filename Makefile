# Switchboard — two commands:
#   make run    build and start switchboardd on its embedded defaults (HTTP 127.0.0.1:8080, ./var/)
#   make test   install what the tests need, build, run the Swift unit tests and the black-box suite
# Both install missing Debian packages (apt-get, as root or through sudo) and are idempotent.

SWIFT      ?= swift
PYTHON     ?= python3
VENV       := .venv
CONFIG     ?=
BIN        := .build/debug
# Libraries the build links against.
BUILD_DEBS := libsqlite3-dev libcurl4-openssl-dev libssl-dev pkg-config
# What the black-box tests and benchmarks drive the daemon with.
TEST_DEBS  := python3-venv curl openssl wrk kannel kannel-extras systemd dovecot-imapd swaks
# The browser the end-to-end chat test drives (installed without recommends: 126 MB, not 164).
BROWSER_DEBS := chromium chromium-driver

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Installs those of the Debian packages $(1) that are missing (apt-get options $(2)).
define install_missing
@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
if [ -n "$$missing" ]; then echo "installing:$$missing"; \
  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(2) $$missing; fi
endef

.PHONY: all build run test unit-test integration-test fuzz bench bench-deps deps test-deps clean

all: build

deps:
	$(call install_missing,$(BUILD_DEBS))

test-deps: deps
	$(call install_missing,$(TEST_DEBS))
	@# Postfix: the hospital MTA relaying to the listener in the tests, and smtp-source plus a
	@# private instance for the SMTP benchmark. Preseeded to "No configuration" so the package
	@# writes no /etc/postfix/main.cf and starts nothing.
	@dpkg -s postfix >/dev/null 2>&1 || { echo "postfix postfix/main_mailer_type select No configuration" | $(SUDO) debconf-set-selections; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postfix; }
	$(call install_missing,$(BROWSER_DEBS),--no-install-recommends)
	@$(MAKE) --no-print-directory $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $@

build: deps
	$(SWIFT) build

run: build
	@mkdir -p var
	$(BIN)/switchboardd $(if $(CONFIG),--config $(CONFIG))

test: test-deps
	$(SWIFT) build --build-tests
	$(MAKE) --no-print-directory unit-test integration-test fuzz

unit-test:
	$(SWIFT) test --skip-build

integration-test:
	SWITCHBOARD_BIN_DIR=$(CURDIR)/$(BIN) $(VENV)/bin/pytest -q tests

# libFuzzer on everything that reads strangers' bytes: the MIME parser, the SMTP session and
# the IMAP response reader
# (Fuzz/MailFuzz, seeded with the golden messages), and the webhook and chat decoders
# (Fuzz/WireFuzz: portal JSON and its signature, Twilio/Kannel forms and signatures, chat
# frames and tokens; seeded with its committed corpus, Fuzz/WireFuzz/Corpus).
# Deterministic: a fixed seed, a fixed number of runs (FUZZ_RUNS, about a minute each here)
# and a fresh working corpus, so that CI sees exactly what a developer saw; `make fuzz
# FUZZ_RUNS=-1 FUZZ_SEED=0` fuzzes until stopped with a random seed (FUZZ_TARGETS=wire-fuzz
# picks one). Its own build directory: the instrumented build never mixes with the ordinary
# one. lld links it (gold fails on libFuzzer's objects); Swift's backtracer is off so that
# libFuzzer's crash handler saves the input: crash-* in .build/fuzz/artifacts, replayed with
# `.build/debug/mail-fuzz [--show] FILE` or `.build/debug/wire-fuzz FILE`.
FUZZ_RUNS ?= 100000
FUZZ_SEED ?= 1
FUZZ_TARGETS ?= mail-fuzz wire-fuzz
fuzz:
	@set -e; for target in $(FUZZ_TARGETS); do \
	  $(SWIFT) build -c release --product $$target --scratch-path .build/fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -use-ld=lld; \
	done
	@set -e; for target in $(FUZZ_TARGETS); do \
	  case $$target in mail-fuzz) seeds=Tests/SwitchboardMailTests/Golden ;; *) seeds=Fuzz/WireFuzz/Corpus ;; esac; \
	  rm -rf .build/fuzz/corpus/$$target && mkdir -p .build/fuzz/corpus/$$target .build/fuzz/artifacts; \
	  echo "== $$target: $(FUZZ_RUNS) runs, seed $(FUZZ_SEED), seeds from $$seeds"; \
	  SWIFT_BACKTRACE=enable=no .build/fuzz/release/$$target -runs=$(FUZZ_RUNS) -seed=$(FUZZ_SEED) -max_len=65536 -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=.build/fuzz/artifacts/$$target- .build/fuzz/corpus/$$target $$seeds; \
	done

# The benchmarks need nothing beyond the tests' packages (Postfix's smtp-source included).
bench-deps: test-deps

bench: bench-deps
	$(SWIFT) build -c release
	SWITCHBOARD_BIN_DIR=$(CURDIR)/.build/release bash Benchmarks/ingest.sh portal
	SWITCHBOARD_BIN_DIR=$(CURDIR)/.build/release ACK=received MAX_BACKLOG=200000 bash Benchmarks/ingest.sh portal
	SWITCHBOARD_BIN_DIR=$(CURDIR)/.build/release bash Benchmarks/ingest.sh twilio
	SWITCHBOARD_BIN_DIR=$(CURDIR)/.build/release bash Benchmarks/triage.sh
	$(CURDIR)/.build/release/routing-bench
	SWITCHBOARD_BIN_DIR=$(CURDIR)/.build/release $(VENV)/bin/python Benchmarks/event_latency.py 50 20
	SWITCHBOARD_BIN_DIR=$(CURDIR)/.build/release $(SUDO) bash Benchmarks/smtp.sh
	SWITCHBOARD_BIN_DIR=$(CURDIR)/.build/release $(VENV)/bin/python Benchmarks/chat.py 5000 20 20

clean:
	rm -rf .build $(VENV)
