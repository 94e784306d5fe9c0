# migpilot: build, test, install
#
#   make            the C core, the agent and the Python extension
#   make check      install Debian packages, build, run every test (unit, ASan/UBSan, Python,
#                   lab, integration, short fuzzing) and print one summary line
#   make demo       a real stalled migration on the lab, rescued by post-copy
#   make bench      benchmarks (results in tests/bench/results/)
#   make install    DESTDIR and PREFIX honoured

VERSION    := 0.1.0
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR    ?=
# Debian's interpreter: the python3 on PATH may be a private build that cannot see
# Debian's packages and would link the extension against itself.
PYTHON     := /usr/bin/python3
CC         ?= cc
CLANG      ?= clang
BUILD      ?= build
RESULTS    ?= $(CURDIR)/build/test-results
SANITIZE   ?=
SUFFIX     ?=
FUZZ_SECONDS ?= 30

# What `make` needs to build (the agent, the extension, the unit tests), and everything the
# tests, the lab, the demo and the benchmarks need besides; the same names on Debian 12 and 13.
DEB_BUILD_PACKAGES := \
	build-essential pkg-config libvirt-dev librabbitmq-dev libjansson-dev libinih-dev check \
	python3-dev python3-setuptools python3-yaml
DEB_PACKAGES := $(DEB_BUILD_PACKAGES) \
	clang libclang-rt-dev llvm valgrind git debootstrap \
	python3-pytest python3-pytest-timeout python3-libvirt python3-oslo.messaging python3-matplotlib \
	qemu-system-x86 libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients \
	busybox-static iproute2 iptables socat cpio procps psmisc openssl rabbitmq-server \
	python3-nova nova-common nova-api nova-conductor nova-scheduler \
	python3-placement glance-api neutron-server python3-openstackclient qemu-utils \
	python3-ceilometer ceilometer-agent-notification

WARNFLAGS := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wvla -Wno-format-nonliteral
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -fPIC -DMP_VERSION='"$(VERSION)"' \
	-DMP_SYSCONFDIR='"$(SYSCONFDIR)"' $(WARNFLAGS) -Iagent/core -Iagent/daemon
CFLAGS ?= -O2 -g
ifeq ($(SANITIZE),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS := -O1 -g
endif

CORE_PKGS   := jansson
DAEMON_PKGS := libvirt librabbitmq jansson inih
# Expanded on first use, not when the Makefile is read: on a new machine the libraries
# arrive with `deps-build`, which every compile waits for (an order-only prerequisite), so
# the first command already sees them. A library still missing then stops the build with
# its name instead of a link error.
mpPkgConfig = $(if $(shell pkg-config --exists $(2) 2>/dev/null && echo ok),$(shell pkg-config $(1) $(2)),$(error pkg-config cannot find $(2): run `make deps`))
PKG_CFLAGS  = $(eval PKG_CFLAGS := $$(call mpPkgConfig,--cflags,$(DAEMON_PKGS) check))$(PKG_CFLAGS)
CORE_LIBS   = $(eval CORE_LIBS := $$(call mpPkgConfig,--libs,$(CORE_PKGS)) -lm)$(CORE_LIBS)
DAEMON_LIBS = $(eval DAEMON_LIBS := $$(call mpPkgConfig,--libs,$(DAEMON_PKGS)) -lm)$(DAEMON_LIBS)
CHECK_LIBS  = $(eval CHECK_LIBS := $$(call mpPkgConfig,--libs,check))$(CHECK_LIBS)

CORE_SRCS   := $(wildcard agent/core/*.c)
CORE_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(CORE_SRCS))
CORE_LIB    := $(BUILD)/libmigpilot-core.a
# The daemon's modules, less main.c, form a library so unit tests can reach them.
DAEMON_SRCS := $(filter-out agent/daemon/main.c,$(wildcard agent/daemon/*.c))
DAEMON_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(DAEMON_SRCS))
DAEMON_LIB  := $(BUILD)/libmigpilot-daemon.a
AGENT       := $(BUILD)/migpilot-agent
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))

.PHONY: all agent asan-agent python unit fuzz-build fuzz-short fuzz deps deps-build check demo \
	demo-manual bench install clean lab-down print-deb-packages print-version deb

all: agent python

agent: $(AGENT)

$(BUILD)/%.o: %.c | deps-build
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(SANFLAGS) -MMD -MP -c $< -o $@

$(CORE_LIB): $(CORE_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(DAEMON_LIB): $(DAEMON_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(AGENT): $(BUILD)/agent/daemon/main.o $(DAEMON_LIB) $(CORE_LIB)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(DAEMON_LIBS)

# The extension links the same core archive (built with -fPIC above). build_ext alone would
# not relink when only the archive changed, hence a stamp and --force. (A stamp, not the .so's
# name: that name comes from the interpreter, which a new machine gets only from deps-build.)
PYEXT_STAMP := $(BUILD)/python-ext.stamp
python: $(PYEXT_STAMP)
$(PYEXT_STAMP): $(CORE_LIB) $(wildcard cext/*.c cext/*.h agent/daemon/*.h) \
		agent/daemon/mpurl.c agent/daemon/mpamqpconn.c agent/daemon/mplocalzone.c setup.py \
		| deps-build
	+MIGPILOT_CORE_LIB=$(CORE_LIB) $(PYTHON) setup.py -q build_ext --inplace --force
	@touch $@

$(BUILD)/tests/unit/%: tests/unit/%.c $(DAEMON_LIB) $(CORE_LIB) tests/unit/mptest.h | deps-build
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(SANFLAGS) \
		-DMP_TEST_DATA_DIR='"$(CURDIR)/tests/data"' -Itests/unit \
		-o $@ $< $(DAEMON_LIB) $(CORE_LIB) $(CHECK_LIBS) $(DAEMON_LIBS)

# Runs every unit test binary; each writes libcheck's XML log for the summary.
# CK_FORK=no keeps each test in-process so LeakSanitizer sees every allocation, but it also
# turns off libcheck's per-test timeouts: `timeout` bounds each binary instead (300 s, then
# SIGKILL 10 s later). A binary that leaves no XML log, or one without a single <test>,
# ran nothing: that fails too.
unit: $(UNIT_BINS)
	@mkdir -p $(RESULTS)
	@rc=0; for t in $(UNIT_BINS); do \
		xml=$(RESULTS)/unit$(SUFFIX)-$$(basename $$t).xml; \
		rm -f "$$xml"; \
		CK_FORK=no MP_TEST_XML="$$xml" timeout --kill-after=10 300 $$t; st=$$?; \
		if [ $$st -eq 124 ] || [ $$st -eq 137 ]; then \
			echo "unit: $$t: still running after 300 s, killed"; rc=1; \
		elif [ $$st -ne 0 ]; then \
			rc=1; \
		fi; \
		if ! grep -qs '<test result=' "$$xml"; then \
			echo "unit: $$t ran no test (no <test> in $$xml)"; rc=1; \
		fi; \
	done; exit $$rc

# libFuzzer targets: the core and daemon sources compiled in with clang's sanitizers.
build/fuzz/%: tests/fuzz/%.c $(CORE_SRCS) $(DAEMON_SRCS) | deps-build
	@mkdir -p $(@D)
	$(CLANG) -std=gnu11 $(filter -D%,$(BASE_CFLAGS)) -g -O1 \
		-fsanitize=fuzzer,address,undefined -Iagent/core -Iagent/daemon $(PKG_CFLAGS) \
		-o $@ $< $(CORE_SRCS) $(DAEMON_SRCS) $(DAEMON_LIBS)

# The agent under ASan + UBSan (build/asan/migpilot-agent), for a lab migration in make
# check; a leak or an invalid access ends it with a non-zero status.
asan-agent:
	$(MAKE) -s BUILD=build/asan SANITIZE=1 agent

fuzz-build: $(FUZZ_BINS)

# Bounded fuzzing for make check; make fuzz runs longer.
fuzz-short: $(FUZZ_BINS)
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(RESULTS) $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	tests/fuzz/run.sh 600 $(RESULTS) $(FUZZ_BINS)

# Installs the Debian packages of a list that are missing (apt-get update first); says nothing
# and installs nothing when all are present. NO_DEPS=1 skips it (packagers: debian/rules).
define mpInstallPackages
@[ -z "$(NO_DEPS)" ] || exit 0; \
	missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; \
	done); \
	[ -n "$$missing" ] || exit 0; \
	echo "deps: installing:" $$missing; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: must run as root to install packages" >&2; exit 1; fi; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $(1)
endef

# What the build needs: every compile waits for it, so `make` works as the first command.
deps-build:
	$(call mpInstallPackages,$(DEB_BUILD_PACKAGES))

# Everything (build, tests, lab, demo, benchmarks).
deps:
	$(call mpInstallPackages,$(DEB_PACKAGES))

# The targets below install first, then build in a new make that reads this file again with
# the packages in place; the steps run in order also under -j.
check: deps
	tests/check.sh

demo: deps
	$(MAKE) all
	$(PYTHON) tests/integration/demo.py

# The lab alone, with a manual post-copy switch (no agent).
demo-manual: deps
	$(MAKE) all
	tests/lab/demo.sh

bench: deps
	$(MAKE) all
	tests/bench/run.sh

lab-down:
	/usr/bin/python3 -m tests.lab.labctl down

install: all
	install -D -m 0755 $(AGENT) $(DESTDIR)$(PREFIX)/sbin/migpilot-agent
	install -D -m 0640 etc/migpilot/migpilot.conf $(DESTDIR)$(SYSCONFDIR)/migpilot/migpilot.conf
	+$(PYTHON) setup.py -q install --root=$(if $(DESTDIR),$(DESTDIR),/) --prefix=$(PREFIX) \
		--single-version-externally-managed
	install -d $(DESTDIR)/lib/systemd/system
	sed -e 's|/usr/sbin/migpilot-agent|$(PREFIX)/sbin/migpilot-agent|g' \
		-e 's|/etc/migpilot/|$(SYSCONFDIR)/migpilot/|g' etc/systemd/migpilot-agent.service \
		> $(DESTDIR)/lib/systemd/system/migpilot-agent.service
	# snippets to merge by hand, never active by themselves: installing must not change
	# which driver a running nova-compute loads
	install -D -m 0644 etc/nova/nova.conf.migpilot \
		$(DESTDIR)/usr/share/migpilot/nova/nova.conf.migpilot
	install -D -m 0644 etc/ceilometer/meters.d/migpilot.yaml \
		$(DESTDIR)$(SYSCONFDIR)/ceilometer/meters.d/migpilot.yaml
	install -D -m 0644 etc/ceilometer/event_definitions.migpilot.yaml \
		$(DESTDIR)/usr/share/migpilot/ceilometer/event_definitions.migpilot.yaml
	install -D -m 0644 etc/ceilometer/gnocchi_resources.migpilot.yaml \
		$(DESTDIR)/usr/share/migpilot/ceilometer/gnocchi_resources.migpilot.yaml

clean:
	rm -rf build _migpilot*.so *.egg-info

-include $(CORE_OBJS:.o=.d) $(DAEMON_OBJS:.o=.d) $(BUILD)/agent/daemon/main.d

# For tests/stacks: the package list, as `make deps` installs it.
print-deb-packages:
	@echo $(DEB_PACKAGES)

print-version:
	@echo $(VERSION)

# The Debian packages (debian/README.source): migpilot-agent and python3-migpilot in ..
# (Debian's tools on PATH only: a private python3 first on PATH would build for itself)
deb: deps-build
	DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q ./
	env PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -b -us -uc
