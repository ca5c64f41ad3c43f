"""The samizdat core: ids, keys, chunking, chunk codec, trees, chunk lists and signed records.

Pure library code: no gRPC, no terminal output. Formats are described in docs/format.md.
"""
