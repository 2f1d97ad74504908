"""The core every feature stands on: settings (`config`), typed errors (`errors`), the command-line
boundary (`cli`), names and files (`names`, `files`), runs (`runs`), the tasks and tables the
project defines (`tasks`, `tables`), and the warehouse interface with its engines (`warehouse`)."""
