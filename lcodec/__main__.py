import sys

from lcodec.cli.main import main

sys.exit(main())
