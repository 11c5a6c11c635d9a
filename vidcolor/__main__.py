from vidcolor.cli import run

run()
