"""python -m wordfreq DIR: count words in DIR's .txt files with a process pool,
then print the top words through a reporting subprocess."""

import json
import multiprocessing
import os
import subprocess
import sys

from wordfreq.counting import count_words, merge


def find_files(directory):
    return sorted(
        os.path.join(directory, name) for name in os.listdir(directory) if name.endswith(".txt")
    )


def main(argv):
    if len(argv) != 1:
        print("usage: python -m wordfreq DIR", file=sys.stderr)
        return 2
    files = find_files(argv[0])
    # The "spawn" start method: fresh interpreters, measured by mpcov too.
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(count_words, files, chunksize=1)
    workers = {pid for pid, _counts in results}
    total = merge(results)
    print(f"{len(files)} files, {sum(total.values())} words, counted by {len(workers)} worker(s)")
    top = total.most_common(5)
    proc = subprocess.run(
        [sys.executable, "-m", "wordfreq.report"], input=json.dumps(top), text=True
    )
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
