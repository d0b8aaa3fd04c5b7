module github.com/maxlerebourg/crowdsec-bouncer-traefik-plugin

go 1.22
