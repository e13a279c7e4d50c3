package config

import "fmt"

func ExampleParse() {
	_, err := Parse("tungate.toml", []byte(`
[[interface]]
name = "lan0"
addresses = ["192.168.46.1/24"]
bogus = 1

[[route]]
to = "default"
via = "10.9.9.9"
`))
	fmt.Println(err)
	// Output:
	// tungate.toml:5: interface "lan0": unknown key "bogus"
	// tungate.toml: route 1: via 10.9.9.9 is not inside any interface's connected prefix
}
