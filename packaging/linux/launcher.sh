#!/bin/sh
# Installed as /usr/bin/@NAME@: runs the bundled executable (same process: exec).
exec /opt/fast3r-studio/@NAME@ "$@"
