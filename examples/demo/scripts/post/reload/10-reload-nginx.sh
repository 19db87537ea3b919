#!/bin/sh
# Runs on the node after files are placed; PACHA_CHANGED lists the changed files, one a line.
echo "post: changed on $PACHA_NODE:"
printf '%s\n' "$PACHA_CHANGED" | sed 's/^/  /'
# On a real host: nginx -t && systemctl reload nginx
