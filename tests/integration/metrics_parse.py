#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# tests/integration/metrics_parse.py - parse a Prometheus text exposition
# (the body of stowd's metrics endpoint) with the reference parser,
# prometheus_client.parser.text_string_to_metric_families, check stowd's
# naming rules, and print every sample on one canonical line:
#
#   name{label="value",...} value      (labels sorted by name)
#
#   metrics_parse.py FILE
#
# Exits 1 if the text does not parse or a rule is broken: every family is
# stowd_*, counters end in _total, durations in _seconds, sizes in _bytes,
# no label is named after a user (user, rcpt, address, mailbox).
import sys

from prometheus_client.parser import text_string_to_metric_families

FORBIDDEN_LABELS = {'user', 'rcpt', 'address', 'mailbox', 'guid'}


def main():
    text = open(sys.argv[1], encoding='utf-8').read()
    bad = []
    lines = []
    families = list(text_string_to_metric_families(text))
    if not families:
        bad.append('no metric families')
    for fam in families:
        if not fam.name.startswith('stowd_'):
            bad.append('family %s is not stowd_*' % fam.name)
        if fam.type == 'counter':
            # the parser strips _total from a counter family's name
            if not any(s.name.endswith('_total') for s in fam.samples):
                bad.append('counter %s has no _total sample' % fam.name)
        if 'seconds' in fam.name and not fam.name.endswith(('_seconds', '_seconds_total')):
            bad.append('%s: seconds must be the unit suffix' % fam.name)
        for s in fam.samples:
            if FORBIDDEN_LABELS & set(s.labels):
                bad.append('%s has a per-user label' % s.name)
            labels = ','.join('%s="%s"' % (k, s.labels[k]) for k in sorted(s.labels))
            lines.append('%s{%s} %s' % (s.name, labels, repr(float(s.value))))
    for line in lines:
        print(line)
    for b in bad:
        print('RULE: ' + b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
