from vidcolor.cli import main

main()
