"""Batch mode on a Ray cluster (``vidcolor batch --ray``): the only part of vidcolor that imports
Ray, and only when it is asked for (the ``ray`` extra).

- connect.py: the optional import and the connection, each failing with one line.
- tasks.py: what runs on the workers (a whole film, a segment of a long film, a film's join).
- progress.py: frames done across the cluster, and the whole batch's progress bar.
- driver.py: the batch itself, in the process that writes the manifest.
"""
