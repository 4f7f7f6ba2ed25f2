from l1select.cli import main

main()
