module github.com/strata-broker/strata

go 1.26
