"""Imported only by the fork server, first of its preloads (app/sandbox/supervisor.py): it
leaves the worker's process group for a session of its own.

A signal sent to the worker's whole group (a terminal's Ctrl-C, ``docker stop``, Heroku's
SIGTERM to every process of a dyno, honcho) reached the fork server too; it died, and every
warm executor with it (their parent-death signal), so a try the worker meant to finish
within its shutdown timeout, or hand back, failed at once ("exited with code 255"). Out of
the group, only the worker stops it: the fork server exits when the worker's end of its
"alive" pipe closes, however the worker ends.
"""

import os
import signal

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

if os.getpid() != os.getsid(0):  # not a session leader yet
    os.setsid()
# The worker started this process with the stop signals blocked (supervisor's
# start_fork_server), so one sent to its group before the setsid is pending, not fatal:
# discarded here (a pending signal that is ignored is dropped), then the defaults are back.
for signum in STOP_SIGNALS:
    signal.signal(signum, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
