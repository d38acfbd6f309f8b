"""Progress of a conversion through its stages, shown with `huggingface_hub`'s tqdm, which the ecosystem's switches
silence: `HF_HUB_DISABLE_PROGRESS_BARS=1`, `huggingface_hub.utils.disable_progress_bars()` and
`transformers.utils.logging.disable_progress_bar()` (which calls the latter)."""

from types import TracebackType

from huggingface_hub.utils import tqdm


class ConversionProgress:
    """A progress bar over a conversion's stages (reading, building, verifying, writing, uploading). `stage(name)`
    marks the previous stage done and names the one starting; leaving the `with` block completes the last one. The
    bar is cleared when it closes, so the converter's own summary or error line stands alone."""

    def __init__(self, description: str, num_stages: int):
        self._bar = tqdm(total=num_stages, desc=description, unit="stage", leave=False)
        self._running = False

    def stage(self, name: str) -> None:
        if self._running:
            self._bar.update()
        self._running = True
        self._bar.set_postfix_str(name)

    def __enter__(self) -> "ConversionProgress":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self._bar.update(self._bar.total - self._bar.n)  # stages skipped on the way count as done
        self._bar.close()


def conversion_progress(description: str, verify: bool, writes: bool, uploads: bool) -> ConversionProgress:
    """The progress of a conversion that reads, builds, and optionally verifies, writes and uploads."""
    return ConversionProgress(description, 2 + int(verify) + int(writes) + int(uploads))
