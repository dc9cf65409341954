"""`manage.py serve`'s supervisor: daphne and the tap process (`manage.py tap`) as children.

With a Redis channel layer the taps run in a process of their own, off the web process's
GIL. `serve` then stays the parent of both: it restarts the tap process whenever it dies
(after a doubling delay, said on its output; viewers are told of the gap by the new process,
`flows.tap.viewer`), passes SIGTERM and SIGINT on to both and waits for them (each cleans up
on its own shutdown path: the tap process deletes its queues and puts tracing back), and
exits with daphne's status once daphne exits, stopping the tap process first.

The children run in a process group of their own, so Ctrl-C in a terminal reaches each of
them once, through the supervisor; on Linux each is also sent SIGTERM should the supervisor
die without passing anything on (kill -9), so no orphan keeps the port or the broker busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence

# The first restart is quick (a tap process killed by accident is back within seconds); one
# that keeps dying is restarted less and less often, up to every RESTART_MAX_DELAY_S.
RESTART_FIRST_DELAY_S = 0.5
RESTART_MAX_DELAY_S = 30.0
# A tap process that ran this long before it died restarts after the first delay again.
RESTART_RESET_AFTER_S = 60.0
# How long the children may take over their shutdown (a tap restoring tracing, say: up to
# 15 s a part, `flows.runtime`) before they are killed.
STOP_TIMEOUT_S = 40.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1

Say = Callable[[str], None]


def supervise(
    web: Sequence[str],
    tap: Sequence[str],
    *,
    say: Say,
    tap_env: Mapping[str, str] | None = None,
) -> int:
    """Run `web` and keep `tap` running beside it until `web` exits or a stop signal comes;
    return the exit status for the supervisor (daphne's)."""
    return asyncio.run(Supervisor(web, tap, say=say, tap_env=tap_env).run())


def exit_status(returncode: int) -> int:
    """A child's `returncode` as a shell would report it (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class Supervisor:
    def __init__(
        self,
        web: Sequence[str],
        tap: Sequence[str],
        *,
        say: Say,
        tap_env: Mapping[str, str] | None = None,
    ) -> None:
        self.web_argv = list(web)
        self.tap_argv = list(tap)
        self.tap_env = dict(tap_env) if tap_env is not None else None
        self.say = say
        self.web: asyncio.subprocess.Process | None = None
        self.tap: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._stop_signal: signal.Signals | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        try:
            self.web = await _spawn(self.web_argv)
            self.say(f"Started the web process (daphne, pid {self.web.pid}).")
            keeper = asyncio.create_task(self._keep_the_tap_running(), name="tap process keeper")
            web_exited = asyncio.create_task(self.web.wait())
            stop_asked = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({web_exited, stop_asked}, return_when=asyncio.FIRST_COMPLETED)
            stop_asked.cancel()
            if web_exited.done() and self._stop_signal is None:
                self.say(
                    f"The web process (daphne) ended ({describe_exit(self.web.returncode or 0)}):"
                    " stopping the tap process."
                )
            self._stopping.set()
            self._pass_on(self._stop_signal or signal.SIGTERM)
            await self._wait_for_the_children(keeper)
            return exit_status(self.web.returncode or 0)
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        if self._stop_signal is not None:
            return  # stopping already: the children have it
        self._stop_signal = sig
        self.say(f"{sig.name}: stopping the web process and the tap process.")
        self._stopping.set()

    def _pass_on(self, sig: signal.Signals) -> None:
        for child in (self.web, self.tap):
            if child is not None and child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(sig)

    async def _wait_for_the_children(self, keeper: asyncio.Task[None]) -> None:
        waits = [child.wait() for child in (self.web, self.tap) if child is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits, keeper), STOP_TIMEOUT_S)
        except TimeoutError:
            self.say(f"Not stopped after {STOP_TIMEOUT_S:g} s: killing what is left.")
            self._pass_on(signal.SIGKILL)
            keeper.cancel()
            for child in (self.web, self.tap):
                if child is not None:
                    await child.wait()

    async def _keep_the_tap_running(self) -> None:
        delay = RESTART_FIRST_DELAY_S
        while not self._stopping.is_set():
            started_at = time.monotonic()
            self.tap = await _spawn(self.tap_argv, env=self.tap_env)
            self.say(f"Started the tap process (`manage.py tap`, pid {self.tap.pid}).")
            if self._stopping.is_set():  # a signal came while it was being started
                self._pass_on(self._stop_signal or signal.SIGTERM)
            returncode = await self.tap.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started_at > RESTART_RESET_AFTER_S:
                delay = RESTART_FIRST_DELAY_S
            self.say(
                f"The tap process ended ({describe_exit(returncode)}); restarting it in "
                f"{delay:g} s. Messages until it is back are not seen: its viewers are told "
                "of the gap."
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, RESTART_MAX_DELAY_S)


async def _spawn(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None
) -> asyncio.subprocess.Process:
    # Output goes where the supervisor's goes: one log for all three.
    return await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        process_group=0,
        preexec_fn=_die_with_the_supervisor if sys.platform == "linux" else None,
    )


def _die_with_the_supervisor() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (Linux's prctl)."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
