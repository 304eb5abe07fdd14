"""Stock levels pushed to the shops (issue 13): see push.py."""
