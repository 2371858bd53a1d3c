"""A plugin implementing a hook that does not exist (a typo): it must fail loudly, by name."""

from ppbench import hookimpl


@hookimpl
def ppbench_register_sanitiser(register):  # British spelling: matches no hookspec
    pass
