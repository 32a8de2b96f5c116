"""CAM Studio: ``python app.py [--host 127.0.0.1] [--port 7860] [--share]`` starts the page.

A Hugging Face Space runs this file. The page is ``cam_studio.page``: a tab per module, wired to
the tabs' backends in ``cam_studio.tabs``.
"""

from cam_studio.page import main

if __name__ == "__main__":
    main()
