"""samizdat.store: the node's chunk store on disk, readable by the node and by a local restore."""
