#!/usr/bin/python3
"""The lab benchmark: a scaled-down version of ICCLab's stressed-memory table on real
QEMU/libvirt, every policy, the agent in the loop for migpilot; then the model's prediction
of the same runs. Writes tests/bench/results/lab.json and lab_time.png, lab_bytes.png.

  MPLAB_PREFIX=.. MPLAB_RABBIT_PORT=.. /usr/bin/python3 -m tests.bench.lab.run \
      [--runs 5] [--steps 16,64,144] [--limit 12] [--policies a,b] [--out DIR]

One guest (256 MiB, 1 vCPU, TCG), rewriting `stressed` MiB flat out; one link cap
(64 MiB/s, pre-copy and post-copy alike); guests ping-pong between the two lab hosts; the
policies interleaved in each round. virsh is the real command; nova is emulated (PEERS).
Nova's timings (completion timeout 800 s/GiB with data_gb >= 2, downtime steps 75 s/GiB)
would make one run last 1600 s: they are compressed so that the timeout is `--limit`
seconds, which is also pure pre-copy's and auto-converge's maximum time.
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

from tests.bench import lablib, stamp
from tests.bench.model import sim
from tests.integration.agentproc import Agent, AgentError
from tests.lab.lab import Lab
from tests.lab.rabbit import Rabbit

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
MEM_MIB = 256
CAP_MIBS = 64
# What pass 1 sends besides the working set (kernel, initramfs, page cache): measured once
# on this lab (pass-1 bytes of a 256 MiB guest minus its working set, libvirt job stats).
BASELINE_MIB = 64
# QEMU's set-up time with the lab's unaligned RAM size (libvirt-lab.md: ~0.4-0.5 s)
SETUP_S = 0.45
# the agent's INFO line of a finished measurement
MEASURED = r'dirty rate of %s: \d+ MiB/s over'
POLICIES = ('migpilot', 'virsh', 'nova-force', 'nova-abort', 'precopy', 'autoconverge')
# what each row is: the real tool, or an emulation of it (and how)
PEERS = {
    'migpilot': 'real: migpilot-agent on each lab host throughout, default [policy] '
                '(observe mode during the other peers\' runs); each migpilot run starts '
                'once the source\'s agent has measured the guest since its last migration '
                '(it does 10 s after one)',
    'virsh': 'real: virsh migrate --live --p2p --persistent --postcopy '
             '--postcopy-after-precopy --bandwidth 64 --postcopy-bandwidth 64',
    'nova-force': 'emulated: nova Zed\'s monitor on libvirt (0.5 s polls, downtime steps, '
                  'force post-copy at the completion timeout), its timings compressed',
    'nova-abort': 'emulated: as nova-force, aborting at the completion timeout',
    'precopy': 'libvirt directly: pure pre-copy, 300 ms max downtime, aborted at the limit',
    'autoconverge': 'libvirt directly: VIR_MIGRATE_AUTO_CONVERGE, aborted at the limit',
}


def controller(name, limit):
    scale = limit / sim.nova_schedule(MEM_MIB * sim.MiB)[1]
    return {
        'migpilot': lambda: lablib.Agent(limit_s=4 * limit),
        'virsh': lambda: lablib.Virsh(limit_s=4 * limit),
        'nova-force': lambda: lablib.Nova('force_complete', MEM_MIB * sim.MiB, scale),
        'nova-abort': lambda: lablib.Nova('abort', MEM_MIB * sim.MiB, scale),
        'precopy': lambda: lablib.PreCopy(limit_s=limit),
        'autoconverge': lambda: lablib.AutoConverge(limit_s=limit),
    }[name](), scale


def model_policy(name, limit, scale):
    if name == 'migpilot':
        return sim.Migpilot()
    if name == 'virsh':
        return sim.Virsh()
    if name == 'precopy':
        return sim.PreCopy(max_time_s=limit)
    sched, timeout = sim.nova_schedule(MEM_MIB * sim.MiB, scale=scale)
    return sim.Nova('force_complete' if name == 'nova-force' else 'abort', sched, timeout)


def dirty_rate_mibs(lab, host, name):
    hbs = lab.heartbeats(host, name)[-3:]
    return statistics.median(hb.dirtied for hb in hbs) if hbs else 0


def start_agents(lab, rabbit):
    """One agent per lab host, for the whole step, in observe mode: the other peers'
    migrations are watched, measured and decided but not acted on. Each migpilot run puts
    them in auto mode (SIGHUP) and back, so that they know the guest as they would on a
    real host, where an agent runs all the time."""
    agents = []
    for h in lab.hosts:
        a = Agent(h.uri, rabbit.url, host=h.name, policy={'mode': 'observe'},
                  extra={'DEFAULT': {'log_level': 'debug', 'progress_interval_ms': '0'}})
        a.measured_since = {}
        agents.append(a.start())
    return agents


def run_step(lab, rabbit, stressed, runs, limit, log, policies=POLICIES):
    """runs rounds at one working-set size, the policies interleaved within each round
    (A B C .. A B C ..), so that a drift of the machine over the step reaches every policy
    alike. The agents run throughout, acting only on migpilot's runs (start_agents)."""
    name = 'bench%d' % stressed
    a, b = lab.hosts
    lab.start_guest(a, name, mem_mib=MEM_MIB, dirty_mib=stressed, dirty_rate=-1,
                    persistent=True)
    time.sleep(2)
    rate = dirty_rate_mibs(lab, a, name)
    out = {'stressed_mib': stressed, 'guest_dirtied_mibs': rate,
           'policies': {pol: [] for pol in policies}, 'agent_switches': [], 'order': []}
    agents = start_agents(lab, rabbit)
    try:
        # the agents' first measurement of the guest (10 s after their start)
        agents[0].wait_log(r'dirty rate of %s: ' % name, timeout=60)
        for i in range(runs):
            for pol in policies:
                out['policies'][pol].append(
                    run_one(lab, name, stressed, pol, limit, agents, log, i))
                out['order'].append(pol)
    finally:
        for ag in agents:
            out['agent_switches'].extend(lablib.parse_agent_log(ag.log()))
            ag.cleanup()
    lab.destroy_guest(name)
    return out


def run_one(lab, name, stressed, pol, limit, agents, log, i):
    a, b = lab.hosts
    src = lab.find_guest(name)
    if src is None:
        lab.destroy_guest(name)
        src = a
        lab.start_guest(src, name, mem_mib=MEM_MIB, dirty_mib=stressed, dirty_rate=-1,
                        persistent=True)
    dst = b if src is a else a
    ctl, scale = controller(pol, limit)
    if pol == 'migpilot':
        # as on a host where guests are not migrated back to back: the source's agent
        # has measured the guest since its last migration (it does so 10 s after one)
        source_agent = agents[lab.hosts.index(src)]
        since = source_agent.measured_since.get(name, 0)
        try:
            source_agent.wait_log(MEASURED % re.escape(name), count=since + 1, timeout=60)
            fresh = True
        except AgentError:
            fresh = False
            log('  no measurement of %s by %s within 60 s' % (name, src.name))
        for ag in agents:
            ag.reload_policy({'mode': 'auto'})
    try:
        r = lablib.measure(lab, src, dst, name, ctl, CAP_MIBS)
    finally:
        if pol == 'migpilot':
            for ag in agents:
                ag.reload_policy({'mode': 'observe'})
        for ag in agents:
            ag.measured_since[name] = len(re.findall(MEASURED % re.escape(name), ag.log()))
    if pol == 'migpilot':
        r['measured_before'] = fresh
    log('  %-12s %3d MiB run %d: %s %s %.1f s, %s MiB, passes %s, downtime %s ms, '
        'stall %s ms, switch pass %s, healthy %s'
        % (pol, stressed, i + 1, r['outcome'], r['mode'], r['time_s'],
           r['bytes'] and round(r['bytes'] / sim.MiB), r['passes'],
           r['downtime_ms'], r['stall_ms'], r['switch_pass'], r['healthy']))
    if not r['healthy'] and lab.find_guest(name):
        lab.destroy_guest(name)
    return r


def median_of(runs, key):
    xs = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(xs) if xs else None


def predict(steps, limit):
    """The model's figures for each lab point (same RAM, working set, cap and limits)."""
    scale = limit / sim.nova_schedule(MEM_MIB * sim.MiB)[1]
    pred = {}
    for st in steps:
        s = st['stressed_mib']
        w = sim.Workload(ram=MEM_MIB * sim.MiB, used=(BASELINE_MIB + s) * sim.MiB,
                         wss=s * sim.MiB, dirty_rate=max(1, st['guest_dirtied_mibs']) * sim.MiB,
                         bandwidth=CAP_MIBS * sim.MiB, downtime_ms=300, overhead_s=SETUP_S)
        pred[s] = {}
        for pol in POLICIES:
            if pol == 'autoconverge':
                continue
            r = sim.simulate(w, model_policy(pol, limit, scale))
            pred[s][pol] = {'outcome': r.outcome, 'mode': r.mode,
                            'time_s': round(r.total_s, 2), 'bytes': round(r.bytes),
                            'passes': r.passes, 'switch_pass': r.switch_pass}
    return pred


def compare(steps, pred):
    """Model vs the median of the lab runs, per point and overall."""
    rows, errs_t, errs_b, agree = [], [], [], 0
    n = 0
    for st in steps:
        s = st['stressed_mib']
        for pol, p in pred[s].items():
            runs = st['policies'].get(pol, [])
            if not runs:
                continue
            mt = median_of(runs, 'time_s')
            mb = median_of(runs, 'bytes')
            modes = [r['mode'] if r['outcome'] == 'completed' else r['outcome'] for r in runs]
            lab_mode = max(set(modes), key=modes.count)
            model_mode = p['mode'] if p['outcome'] == 'completed' else p['outcome']
            et = 100 * (p['time_s'] - mt) / mt if mt else None
            eb = 100 * (p['bytes'] - mb) / mb if mb else None
            n += 1
            agree += lab_mode == model_mode
            if et is not None:
                errs_t.append(abs(et))
            if eb is not None:
                errs_b.append(abs(eb))
            rows.append({'stressed_mib': s, 'policy': pol, 'lab_time_s': mt,
                         'model_time_s': p['time_s'], 'err_time_pct': et and round(et, 1),
                         'lab_mib': mb and round(mb / sim.MiB, 1),
                         'model_mib': round(p['bytes'] / sim.MiB, 1),
                         'err_bytes_pct': eb and round(eb, 1), 'lab_outcome': lab_mode,
                         'model_outcome': model_mode,
                         'lab_switch_pass': median_of(runs, 'switch_pass'),
                         'model_switch_pass': p['switch_pass'] or None})
    return {'rows': rows,
            'mean_abs_err_time_pct': round(statistics.mean(errs_t), 1) if errs_t else None,
            'median_abs_err_time_pct': round(statistics.median(errs_t), 1) if errs_t else None,
            'mean_abs_err_bytes_pct': round(statistics.mean(errs_b), 1) if errs_b else None,
            'median_abs_err_bytes_pct': round(statistics.median(errs_b), 1) if errs_b else None,
            'outcome_agreement': '%d/%d' % (agree, n)}


def plot(result, outdir):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    steps = result['steps']
    xs = [s['stressed_mib'] for s in steps]
    colors = dict(zip(POLICIES, ('tab:blue', 'tab:orange', 'tab:red', 'tab:purple',
                                 'tab:gray', 'tab:green')))
    for key, fname, ylabel, div in (('time_s', 'lab_time.png', 'migration time (s)', 1),
                                    ('bytes', 'lab_bytes.png', 'transferred (MiB)', sim.MiB)):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for pol in POLICIES:
            med, lo, hi = [], [], []
            for s in steps:
                v = [r[key] / div for r in s['policies'].get(pol, []) if r.get(key) is not None]
                med.append(statistics.median(v) if v else float('nan'))
                lo.append(med[-1] - min(v) if v else 0)
                hi.append(max(v) - med[-1] if v else 0)
            ax.errorbar(xs, med, yerr=[lo, hi], color=colors[pol], marker='o', capsize=3,
                        label=pol)
            if pol in result['model'].get(str(xs[0]), {}):
                pv = [result['model'][str(x)][pol][key] / div for x in xs]
                ax.plot(xs, pv, color=colors[pol], linestyle=':', alpha=0.7)
        ax.set_xlabel('stressed memory (MiB), %d MiB guest, %d MiB/s cap'
                      % (MEM_MIB, CAP_MIBS))
        ax.set_ylabel(ylabel)
        ax.set_title('lab: median of %d runs (bars: min-max); dotted: model'
                     % result['runs_per_point'])
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, fname), dpi=80)
        plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--steps', default='16,64,144')
    ap.add_argument('--limit', type=float, default=12.0,
                    help='nova completion timeout / pre-copy max time on the lab (s)')
    ap.add_argument('--policies', default=','.join(POLICIES),
                    help='comma-separated subset of %s (a trial; make bench runs all)'
                    % ', '.join(POLICIES))
    ap.add_argument('--out', default=os.path.join(REPO, 'tests', 'bench', 'results'))
    args = ap.parse_args()
    steps_mib = [int(x) for x in args.steps.split(',')]
    policies = tuple(args.policies.split(','))
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        ap.error('--policies: unknown %s (known: %s)' % (', '.join(unknown),
                                                          ', '.join(POLICIES)))
    prefix = os.environ.get('MPLAB_PREFIX', 'mpbench')
    port = int(os.environ.get('MPLAB_RABBIT_PORT', '5713'))
    t0 = time.monotonic()
    st = stamp.Stamp()

    def log(msg):
        print('[lab %6.0fs] %s' % (time.monotonic() - t0, msg), flush=True)

    steps = []
    with Lab(prefix=prefix) as lab, Rabbit(port=port, prefix=prefix) as rabbit:
        for s in steps_mib:
            log('stressed %d MiB' % s)
            steps.append(run_step(lab, rabbit, s, args.runs, args.limit, log, policies))
    pred = predict(steps, args.limit)
    result = {
        'peers': PEERS,
        'guest_mib': MEM_MIB, 'cap_mibs': CAP_MIBS, 'runs_per_point': args.runs,
        'limit_s': args.limit,
        'nova_time_scale': round(args.limit / sim.nova_schedule(MEM_MIB * sim.MiB)[1], 5),
        'model_inputs': {'baseline_mib': BASELINE_MIB, 'setup_s': SETUP_S,
                         'downtime_ms': 300},
        'steps': steps, 'model': {str(k): v for k, v in pred.items()},
        'comparison': compare(steps, pred),
        'seconds': round(time.monotonic() - t0),
    }
    result['stamp'] = st.finish()
    sw = [x for s in steps for x in s['agent_switches']]
    result['agent_switch_latency'] = {
        'n': len(sw),
        'agent_ms_median': statistics.median(x['agent_ms'] for x in sw) if sw else None,
        'log_ms_median': statistics.median(x['log_ms'] for x in sw
                                           if x['log_ms'] is not None) if sw else None}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'lab.json'), 'w') as f:
        json.dump(result, f, indent=1)
    plot(result, args.out)
    c = result['comparison']
    log('done: model vs lab: time error median %s%% (mean %s%%), bytes error median %s%% '
        '(mean %s%%), outcomes agree %s'
        % (c['median_abs_err_time_pct'], c['mean_abs_err_time_pct'],
           c['median_abs_err_bytes_pct'], c['mean_abs_err_bytes_pct'], c['outcome_agreement']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
