#!/bin/sh
# Runs on the node before files are placed; if it fails, nothing is placed on that node.
echo "pre: $PACHA_NODE is about to get state $PACHA_STATE"
