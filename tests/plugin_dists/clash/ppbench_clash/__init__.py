"""A plugin that registers a sanitizer under a name the built-ins already use."""

from ppbench import Sanitizer, hookimpl


class AnotherBlur(Sanitizer):
    name = "blur"
    description = "A second sanitizer called blur: registering it must be an error naming both."

    def transform(self, images, ctx):
        return images


@hookimpl
def ppbench_register_sanitizers(register):
    register(AnotherBlur)
