"""A plugin whose import fails: discovery must report it by name and load the others."""

raise ImportError("ppbench_broken needs a module that is not installed (deliberately)")
