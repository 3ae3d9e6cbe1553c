"""The H5 workspace inside WeCom: signed-in draft pages (read, diff, decide), served by the bot itself."""
