module h2k/tests/apiclient

go 1.23.0
