"""``python -m api.cli`` runs the ``roamledger`` command line."""

from api.cli import main

raise SystemExit(main())
