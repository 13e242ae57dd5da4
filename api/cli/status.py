"""The exit statuses of ``roamledger`` (a module of constants: :mod:`api.cli` loads it before any
command module, so that Ctrl-C while the heavy modules load is answered like any other)."""

EXIT_OK = 0
EXIT_FAIL_ON = 1  # the run completed and wrote its files, but --fail-on found what it was asked to
EXIT_INPUT = 2  # usage or input error: nothing useful could be done with what was given
EXIT_BUG = 70  # an internal error (a bug): one sentence, no traceback
EXIT_INTERRUPTED = 130  # Ctrl-C: nothing written
EXIT_TERMINATED = 143  # SIGTERM (timeout, docker stop, systemd): nothing written
EXIT_STATUS_HELP = """exit status:
  0    done (rejected records, if any, are in the rejects file)
  1    done, but --fail-on rejects|findings found rejected records or findings
  2    usage or input error (no such path, nothing read, every record rejected, ...)
  70   internal error (a bug; please report it)
  130  interrupted (Ctrl-C); nothing written
  143  terminated (SIGTERM); nothing written
"""
