"""`migpilot watch` (not implemented yet)."""
import sys


def register(subparsers):
    parser = subparsers.add_parser('watch', help='(not implemented yet)')
    parser.set_defaults(func=run)


def run(args):
    sys.stderr.write('migpilot watch: not implemented yet\n')
    return 1
