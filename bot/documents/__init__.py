"""Uploaded draft documents: content checks, docx-to-HTML conversion and text diffs."""
