"""Tool-side code of the scenarios; each module runs in the interpreter of its tool."""
