"""What migpilot's nova driver expects of nova's libvirt driver.

nova_hooks.driver overrides private methods of nova.virt.libvirt.driver.LibvirtDriver;
nova renames their parameters between releases (nova 2026.1 renamed _live_migration_monitor's
`finish_event` to `future` when it moved to native threads). The driver compares, when its
class is created, the parent's signatures with the ones below, and `migpilot check` compares
them with nova's source without importing nova. Both use mismatch() for the verdict, so they
say the same line.

No nova import here: `migpilot check` must run where nova's import is not wanted.
"""
import ast
import inspect

_P = inspect.Parameter

# Every method of nova's LibvirtDriver that migpilot's driver overrides, with the
# parameters (after self, names in order, all positional-or-keyword) it was written and
# tested against: nova Zed (26.0.0) to 2025.1 (31.0.0) define them exactly so.
EXPECTED = {
    '_live_migration_monitor': ('context', 'instance', 'guest', 'dest', 'post_method',
                                'recover_method', 'block_migration', 'migrate_data',
                                'finish_event', 'disk_paths'),
    '_get_pci_passthrough_devices': (),
    # the same from Zed to master (2026-08)
    '_parse_migration_flags': (),
}

# found[name] when the method cannot be compared
MISSING = 'no such method'


def expected_signature(name):
    """The inspect.Signature (without self) migpilot's driver expects of method `name`."""
    return inspect.Signature([_P(p, _P.POSITIONAL_OR_KEYWORD) for p in EXPECTED[name]])


def _shape(sig):
    return [(p.name, p.kind) for p in sig.parameters.values()]


def _bare(sig):
    # names and kinds only: defaults and annotations do not change how the driver calls
    return str(sig.replace(parameters=[
        p.replace(default=_P.empty, annotation=_P.empty) for p in sig.parameters.values()],
        return_annotation=inspect.Signature.empty))


def _without_self(sig):
    params = list(sig.parameters.values())
    if params and params[0].kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD):
        params = params[1:]
    return sig.replace(parameters=params)


def class_signatures(lookup):
    """{name: Signature without self, or a string saying why there is none} of the
    EXPECTED methods; lookup(name) returns the parent's function or None."""
    found = {}
    for name in EXPECTED:
        func = lookup(name)
        if func is None:
            found[name] = MISSING
            continue
        try:
            found[name] = _without_self(inspect.signature(func))
        except (TypeError, ValueError) as e:
            found[name] = 'no readable signature (%s)' % e
    return found


def _ast_signature(node):
    a = node.args
    params = [_P(x.arg, _P.POSITIONAL_ONLY) for x in a.posonlyargs]
    params += [_P(x.arg, _P.POSITIONAL_OR_KEYWORD) for x in a.args]
    if a.vararg:
        params.append(_P(a.vararg.arg, _P.VAR_POSITIONAL))
    params += [_P(x.arg, _P.KEYWORD_ONLY) for x in a.kwonlyargs]
    if a.kwarg:
        params.append(_P(a.kwarg.arg, _P.VAR_KEYWORD))
    return _without_self(inspect.Signature(params))


def source_signatures(path, class_name='LibvirtDriver'):
    """class_signatures() of class `class_name` as defined in the Python file `path`
    (nova's nova/virt/libvirt/driver.py), read without importing it. Raises OSError,
    SyntaxError or ValueError (no such class)."""
    with open(path, 'rb') as f:
        tree = ast.parse(f.read(), filename=path)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    if not classes:
        raise ValueError('%s defines no class %s' % (path, class_name))
    defs = {}
    for node in classes[-1].body:       # the last definition wins, as at run time
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs[node.name] = node
    return {name: _ast_signature(defs[name]) if name in defs else MISSING
            for name in EXPECTED}


def differences(found):
    """['method: expected (...), found (...)', ...] of the EXPECTED methods that differ."""
    diffs = []
    for name in EXPECTED:
        sig = found.get(name, MISSING)
        expected = expected_signature(name)
        if isinstance(sig, str):
            diffs.append('%s: expected %s, found %s' % (name, expected, sig))
        elif _shape(sig) != _shape(expected):
            diffs.append('%s: expected %s, found %s' % (name, expected, _bare(sig)))
    return diffs


def mismatch(found):
    """None when every EXPECTED method was found with the expected parameters, else the one
    line saying which differ, expected vs found, and what that means."""
    diffs = differences(found)
    if not diffs:
        return None
    return ('nova\'s libvirt driver is not the one migpilot\'s driver was written for (%s): '
            'migpilot\'s driver now behaves exactly like nova\'s stock libvirt driver and '
            'only the migpilot agent switches migrations (run it with [policy] mode = auto, '
            'and set nova\'s [libvirt] live_migration_completion_timeout = 0)'
            % '; '.join(diffs))
