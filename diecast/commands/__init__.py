"""One module per ``diecast`` subcommand.

Each exposes ``HELP`` (its line in ``diecast --help``), ``EXTRA`` (the pip extra its ``run`` needs, or None),
``configure(parser)`` (arguments, description and an epilog with examples; standard library only) and
``run(args) -> int`` (the exit code: it turns the arguments into typed values and calls the library).
"""


class UsageError(Exception):
    """A command line that parses but contradicts itself; ``run`` raises it before any work and the dispatcher
    reports it as argparse reports a bad argument (the usage line, the message, exit 2)."""
