import sys

from handviz.cli import main

sys.exit(main())
