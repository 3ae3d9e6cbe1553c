"""The WeCom transport: callback verify → decrypt → parse → dedupe → dispatch, the API client, the outbox."""
