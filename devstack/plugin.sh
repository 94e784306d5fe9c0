#!/bin/bash
# devstack/plugin.sh: migpilot's devstack plugin (see devstack/settings).
#
# stack/install       build migpilot (agent, extension) and install it, with the nova
#                     driver shim nova/virt/migpilot/ in nova's package
# stack/post-config   nova.conf: compute driver, post-copy, notifications; migpilot.conf;
#                     Ceilometer meters, events and Gnocchi resources
# stack/extra         start migpilot-agent (devstack's run_process)
# unstack / clean     stop the agent / remove its files

# Save trace setting
_XTRACE_MIGPILOT=$(set +o | grep xtrace)
set -o xtrace

function install_migpilot {
    # the build needs these Debian/Ubuntu packages (make deps lists the full test set)
    install_package build-essential pkg-config libvirt-dev librabbitmq-dev libjansson-dev \
        libinih-dev python3-dev
    (cd $MIGPILOT_DIR && make all && sudo make install PREFIX=/usr/local \
        MIGPILOT_NOVA_DIR=$(python3 -c 'import nova, os; print(os.path.dirname(nova.__file__))'))
    # devstack's nova runs from a checkout in a virtualenv or the system python: make
    # nova_hooks importable there too
    pip_install -e $MIGPILOT_DIR
}

function configure_migpilot_nova {
    local conf=$NOVA_CPU_CONF
    [[ -n "$conf" ]] || conf=$NOVA_CONF
    iniset $conf libvirt live_migration_permit_post_copy True
    iniset $conf notifications notification_format both
    iniset $conf oslo_messaging_notifications driver messagingv2
    if [[ "$MIGPILOT_SWITCH_MODE" == "nova" ]]; then
        iniset $conf DEFAULT compute_driver migpilot.driver.LibvirtDriver
        iniset $conf migpilot mode auto
    else
        iniset $conf DEFAULT compute_driver libvirt.LibvirtDriver
        iniset $conf libvirt live_migration_completion_timeout 0
    fi
}

function configure_migpilot_agent {
    sudo install -d -m 0755 $MIGPILOT_CONF_DIR
    sudo install -d -m 0750 $MIGPILOT_STATE_DIR
    sudo install -m 0640 $MIGPILOT_DIR/etc/migpilot/migpilot.conf $MIGPILOT_CONF
    local policy_mode=$MIGPILOT_POLICY_MODE
    # nova switches: the agent measures and reports, it must not race nova
    [[ "$MIGPILOT_SWITCH_MODE" == "nova" ]] && policy_mode=observe
    sudo iniset $MIGPILOT_CONF DEFAULT host $(hostname)
    sudo iniset $MIGPILOT_CONF DEFAULT state_dir $MIGPILOT_STATE_DIR
    sudo iniset $MIGPILOT_CONF amqp nova_conf ${NOVA_CPU_CONF:-$NOVA_CONF}
    sudo iniset $MIGPILOT_CONF libvirt uri qemu:///system
    sudo iniset $MIGPILOT_CONF logs nova_compute_log ""
    sudo iniset $MIGPILOT_CONF policy mode $policy_mode
}

function configure_migpilot_ceilometer {
    local cdir=${CEILOMETER_CONF_DIR:-/etc/ceilometer}
    sudo install -D -m 0644 $MIGPILOT_DIR/etc/ceilometer/meters.d/migpilot.yaml \
        $cdir/meters.d/migpilot.yaml
    # event definitions: one file, so append ours to what devstack installed
    if [[ -f $cdir/event_definitions.yaml ]] && \
            ! grep -q compute.live_migration.metrics $cdir/event_definitions.yaml; then
        sed '1{/^---$/d}' $MIGPILOT_DIR/etc/ceilometer/event_definitions.migpilot.yaml | \
            sudo tee -a $cdir/event_definitions.yaml >/dev/null
    fi
    # Gnocchi stores only meters its resource file lists (instance resource)
    if [[ -f $cdir/gnocchi_resources.yaml ]] && \
            ! grep -q compute.instance.live_migration.time $cdir/gnocchi_resources.yaml; then
        sudo python3 - $cdir/gnocchi_resources.yaml <<'PY'
import sys, yaml
path = sys.argv[1]
with open(path) as f:
    doc = yaml.safe_load(f)
for res in doc['resources']:
    if res.get('resource_type') == 'instance':
        for m in ('time', 'downtime', 'bytes'):
            res.setdefault('metrics', {})['compute.instance.live_migration.' + m] = None
with open(path, 'w') as f:
    yaml.safe_dump(doc, f, default_flow_style=False)
PY
    fi
}

function start_migpilot {
    run_process migpilot-agent "/usr/local/sbin/migpilot-agent --foreground --config $MIGPILOT_CONF" root root
}

function stop_migpilot {
    stop_process migpilot-agent
}

function cleanup_migpilot {
    sudo rm -rf $MIGPILOT_STATE_DIR $MIGPILOT_CONF_DIR
    local novadir
    novadir=$(python3 -c 'import nova, os; print(os.path.dirname(nova.__file__))' 2>/dev/null)
    [[ -n "$novadir" ]] && sudo rm -rf $novadir/virt/migpilot
}

if is_service_enabled migpilot-agent; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing migpilot"
        install_migpilot
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring migpilot"
        if is_service_enabled n-cpu; then
            configure_migpilot_nova
        fi
        configure_migpilot_agent
        if [[ "$MIGPILOT_CEILOMETER" == "True" ]] && is_service_enabled ceilometer-anotification; then
            configure_migpilot_ceilometer
        fi
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting migpilot-agent"
        start_migpilot
        migpilot check --nova-conf ${NOVA_CPU_CONF:-$NOVA_CONF} || true
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_migpilot
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_migpilot
    fi
fi

# Restore xtrace
$_XTRACE_MIGPILOT
