package config_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/stakhanov/stakhanov/config"
)

// A command registers its options once; the file, the environment and the
// flags then set them, each over the one before.
func Example() {
	brokers, window, password := []string{"localhost:9092"}, 28*24*time.Hour, ""
	r := &config.Registry{}
	r.Var(config.List(&brokers), "kafka.brokers", "brokers", "bootstrap brokers")
	r.Var(config.Duration(&window), "rules.window", "window", "trailing window of a norm")
	r.Add(&config.Option{Key: "kafka.sasl.password", Usage: "SASL password", Secret: true, Value: config.String(&password)})

	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	r.Bind(fs)
	_ = fs.Parse([]string{"-window", "336h"})

	dir, _ := os.MkdirTemp("", "config")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "stakhanov.yaml")
	_ = os.WriteFile(file, []byte("kafka:\n  brokers: [kafka-1:9092, kafka-2:9092]\nrules:\n  window: 672h\n"), 0o600)
	env := map[string]string{"STAKHANOV_KAFKA_SASL_PASSWORD": "s3cret"}

	if err := r.Resolve(file, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(brokers, window, password)
	for _, o := range r.Options() {
		src, _ := o.Source()
		fmt.Printf("%s from %v\n", o.Key, src)
	}
	// Output:
	// [kafka-1:9092 kafka-2:9092] 336h0m0s s3cret
	// kafka.brokers from file
	// rules.window from flag
	// kafka.sasl.password from environment
}
