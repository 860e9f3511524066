import sys

from smlaunch_serving.worker import main

sys.exit(main())
