"""The `migpilot` command line.

Each subcommand lives in its own module `nova_hooks.cmd_<name>` with `register(subparsers)`
(adds its parser and sets `func`) and is listed in SUBCOMMANDS.
"""
import argparse
import importlib
import sys

import _migpilot

SUBCOMMANDS = ('logs', 'decode', 'listen', 'watch', 'check', 'predict')


class _Parser(argparse.ArgumentParser):
    # argparse exits with 2 on bad arguments already; keep its message to one line.
    def error(self, message):
        self.exit(2, '%s: error: %s\n' % (self.prog, message))


def build_parser():
    parser = _Parser(prog='migpilot',
                     description='Inspect and measure nova live migrations.')
    parser.add_argument('--version', action='version',
                        version='migpilot %s' % _migpilot.__version__)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND',
                                parser_class=_Parser)
    for name in SUBCOMMANDS:
        module = importlib.import_module('nova_hooks.cmd_%s' % name)
        module.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'func', None) is None:
        parser.print_usage(sys.stderr)
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
