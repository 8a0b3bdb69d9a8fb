# tandem — build, test, run.  See README.md.
CC      ?= cc
PKGS     = libevent libevent_openssl libevent_pthreads openssl sqlite3 inih jansson libunbound gmime-3.0
WARN     = -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wformat=2 -Wno-format-truncation -Wno-unknown-warning-option
CFLAGS  ?= -O2 -g
# What the code needs whatever CFLAGS a caller sets (make asan sets its own).
ALL_CFLAGS = $(CFLAGS) -std=gnu11 $(WARN) -D_GNU_SOURCE -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt -lpthread
PREFIX  ?= /usr/local
B       ?= build

LIB_SRC  = $(filter-out src/main.c,$(wildcard src/*/*.c))
LIB_OBJ  = $(LIB_SRC:%.c=$(B)/%.o)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all deps test unit e2e asan run install install-sendmail clean fuzz fuzz-smoke bench bench-smoke
all: $(B)/tandem

deps:
	@./scripts/install-deps

$(B)/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/libtandem.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/tandem: $(B)/src/main.o $(B)/libtandem.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libtandem.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/libtandem.a $(LDLIBS) -lcmocka

unit: $(UNIT_BIN)
	@./scripts/run-unit $(UNIT_BIN)

# End-to-end scenarios: pytest in a private network namespace (scripts/run-e2e);
# E2E="-k PATTERN -n 0 ..." passes options on.
e2e: $(B)/tandem
	@./scripts/run-e2e --binary $(B)/tandem $(E2E)

test: deps
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory fuzz-smoke
	@./scripts/run-e2e --binary $(B)/tandem $(E2E)

# ASan + UBSan build of everything, then the whole suite against it.
asan: deps
	@$(MAKE) --no-print-directory B=build-asan CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  build-asan/tandem $(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ./scripts/run-unit $(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)
	@ASAN_OPTIONS=detect_leaks=1 ./scripts/run-e2e --binary build-asan/tandem --asan $(E2E)

# libFuzzer harnesses (clang); fuzz-smoke runs each briefly on its corpus.
# The library is built once with fuzzer instrumentation, then each harness
# links against it.
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -D_GNU_SOURCE -Isrc \
	      $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_OBJ = $(LIB_SRC:%.c=$(B)/fuzzobj/%.o)

$(B)/fuzzobj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c -o $@ $<

$(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LDLIBS)

fuzz: $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
fuzz-smoke: fuzz
	@./scripts/run-fuzz $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)

# Benchmarks against the peers (as root): Dovecot is installed here, not
# by `make test`. bench-smoke is a quick check that every row runs.
BENCH_PKGS = dovecot-imapd dovecot-pop3d
bench-deps: deps
	@for p in $(BENCH_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	 [ -z "$$missing" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; }
bench: bench-deps all
	bench/imap
bench-smoke: bench-deps all
	bench/imap --count 300 --pop3-count 100

run: deps all
	@./scripts/demo

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/doc/tandem
	install -m 755 $(B)/tandem $(DESTDIR)$(PREFIX)/sbin/tandem
	install -m 644 etc/tandem.conf.example etc/tandem.service README.md $(DESTDIR)$(PREFIX)/share/doc/tandem/

# sendmail(1), mailq and newaliases as links to tandem, beside it (cron
# and PHP look for /usr/sbin/sendmail: PREFIX=/usr, once no other MTA
# package owns those names).
install-sendmail: install
	for n in sendmail mailq newaliases; do ln -sf tandem $(DESTDIR)$(PREFIX)/sbin/$$n; done

clean:
	rm -rf build build-asan var
