"""The event-file contract: tags and kinds (`schema`), codecs (`codecs`), summary metadata (`metadata`)."""
