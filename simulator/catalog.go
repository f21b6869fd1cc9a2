package simulator

// The catalog: industries, their peer groups (role and unit) and the names of
// plants and workers. Every identifier here is a lower-case ASCII slug, so
// that values need no JSON escaping.

// roleSpec is one kind of peer group: a role whose output is counted in a
// unit.
type roleSpec struct {
	role string
	unit string
	// rate is the typical output per hour of one worker (or brigade) of an
	// average plant.
	rate float64
	// decimals is how many decimal places output and scrap carry. Chosen,
	// with rate, so that rounding moves a shift's rate by at most
	// maxRoundingError (checked by a test).
	decimals int
	// scrap says whether reports of the group carry a scrap figure.
	scrap bool
	// crew is the usual crew_size: 1 for one worker, more for a brigade.
	crew int
}

// industrySpec describes one industry.
type industrySpec struct {
	name string
	// hours is the length of a shift: 6 in the mines and the chemical
	// works (hazardous trades), 8 elsewhere.
	hours int
	// roles lists the industry's peer groups; a plant always has the first
	// one and may have more.
	roles []roleSpec
	// plants are real plant names of the 1930s, used in turn; a name used
	// again gets a numeric suffix.
	plants []string
	// sections are section names a group may report.
	sections []string
	// feminine says whether worker surnames take the feminine form (the
	// weaving sheds).
	feminine bool
}

// Industry names.
const (
	Coal            = "coal"
	Metallurgy      = "metallurgy"
	Automotive      = "automotive"
	MachineBuilding = "machine-building"
	Chemical        = "chemical"
	Power           = "power"
	Textile         = "textile"
)

// catalog holds every industry the simulator knows, in the default order.
var catalog = []industrySpec{
	{
		name: Coal, hours: 6,
		roles: []roleSpec{
			// 14 t per 6 h shift: the norm Stakhanov beat.
			{role: "hewer", unit: "t", rate: 14.0 / 6, decimals: 2, crew: 1},
			{role: "timberman", unit: "m", rate: 1.5, decimals: 2, crew: 1},
			{role: "haulier", unit: "t", rate: 8, decimals: 2, crew: 1},
		},
		plants:   []string{"tsentralnaya-irmino", "kochegarka", "imeni-ilicha", "karl-marx", "kapitalnaya", "artem"},
		sections: []string{"seam-nikanor", "seam-almaznyi", "lava-2", "lava-5", "horizon-230"},
	},
	{
		name: Metallurgy, hours: 8,
		roles: []roleSpec{
			{role: "steelmaker", unit: "t", rate: 12, decimals: 2, scrap: true, crew: 1},
			{role: "roller", unit: "t", rate: 30, decimals: 2, scrap: true, crew: 1},
			{role: "blast-furnace-keeper", unit: "t", rate: 40, decimals: 2, scrap: true, crew: 1},
		},
		plants:   []string{"magnitka", "kuznetsk", "zaporozhstal", "azovstal", "dzerzhinsky", "makeevka"},
		sections: []string{"open-hearth-shop", "blooming-mill", "blast-furnace-2", "rolling-shop"},
	},
	{
		name: Automotive, hours: 8,
		roles: []roleSpec{
			{role: "lathe-operator", unit: "parts", rate: 30, decimals: 0, scrap: true, crew: 1},
			{role: "assembly-brigade", unit: "cars", rate: 1.2, decimals: 2, scrap: true, crew: 6},
			{role: "forger", unit: "forgings", rate: 85, decimals: 0, scrap: true, crew: 1},
		},
		plants:   []string{"gaz", "zis", "yaz", "kim"},
		sections: []string{"forge-shop", "engine-shop", "main-conveyor", "chassis-shop"},
	},
	{
		name: MachineBuilding, hours: 8,
		roles: []roleSpec{
			{role: "lathe-operator", unit: "parts", rate: 25, decimals: 0, scrap: true, crew: 1},
			{role: "assembly-brigade", unit: "tractors", rate: 0.9, decimals: 2, scrap: true, crew: 8},
			{role: "milling-operator", unit: "parts", rate: 20, decimals: 0, scrap: true, crew: 1},
		},
		plants:   []string{"uralmash", "nkmz", "stz", "khtz", "chtz", "kirovsky"},
		sections: []string{"machine-shop-1", "machine-shop-3", "assembly-hall", "tool-shop"},
	},
	{
		name: Chemical, hours: 6,
		roles: []roleSpec{
			{role: "apparatchik", unit: "t", rate: 3.5, decimals: 2, scrap: true, crew: 1},
			{role: "packer", unit: "bags", rate: 70, decimals: 0, scrap: true, crew: 1},
			{role: "kiln-operator", unit: "t", rate: 5, decimals: 2, scrap: true, crew: 1},
		},
		plants:   []string{"berezniki", "bobriki", "solikamsk", "chernorechensky", "voskresensk"},
		sections: []string{"ammonia-shop", "sulphuric-acid-shop", "potash-mill", "soda-shop"},
	},
	{
		name: Power, hours: 8,
		roles: []roleSpec{
			{role: "stoker", unit: "t", rate: 2.2, decimals: 2, crew: 1},
			{role: "turbine-operator", unit: "mwh", rate: 20, decimals: 1, crew: 1},
			{role: "lineman", unit: "km", rate: 0.6, decimals: 2, crew: 1},
		},
		plants:   []string{"dneproges", "shaturskaya", "kashirskaya", "zuevskaya", "nizhnesvirskaya"},
		sections: []string{"boiler-house", "turbine-hall", "switchyard"},
	},
	{
		name: Textile, hours: 8,
		roles: []roleSpec{
			{role: "weaver", unit: "m", rate: 40, decimals: 1, scrap: true, crew: 1},
			{role: "spinner", unit: "kg", rate: 12, decimals: 1, scrap: true, crew: 1},
			{role: "dyer", unit: "m", rate: 120, decimals: 1, scrap: true, crew: 1},
		},
		plants:   []string{"trekhgornaya", "vichuga-nogina", "glukhovskaya", "krasnokholmskaya", "ivanovo-melange"},
		sections: []string{"weaving-shed-1", "weaving-shed-2", "spinning-mill", "dye-house"},
		feminine: true,
	},
}

// Industries lists every industry the simulator knows, in the default order.
func Industries() []string {
	out := make([]string, len(catalog))
	for i, in := range catalog {
		out[i] = in.name
	}
	return out
}

func industryByName(name string) (*industrySpec, bool) {
	for i := range catalog {
		if catalog[i].name == name {
			return &catalog[i], true
		}
	}
	return nil, false
}

// The canonical record: Aleksei Stakhanov at the Tsentralnaya-Irmino mine.
const (
	stakhanovPlant  = "tsentralnaya-irmino"
	stakhanovWorker = "a.stakhanov"
	stakhanovOutput = 102
	stakhanovCrew   = 3 // two timbermen propped the face behind him
	stakhanovHour   = 22
)

// stakhanovDate is the day of the canonical record (UTC), as year, month, day.
var stakhanovDate = [3]int{1935, 8, 30}

// Surnames (masculine form) and initials workers are named from.
var surnames = []string{
	"ivanov", "petrov", "smirnov", "kuznetsov", "popov", "vasilyev", "sokolov",
	"mikhailov", "novikov", "fedorov", "morozov", "volkov", "alekseev", "lebedev",
	"semenov", "egorov", "pavlov", "kozlov", "stepanov", "nikolaev", "orlov",
	"andreev", "makarov", "nikitin", "zakharov", "zaitsev", "solovyev", "borisov",
	"yakovlev", "grigoryev", "romanov", "vorobyov", "sergeev", "kuzmin", "frolov",
	"aleksandrov", "dmitriev", "korolev", "gusev", "kiselev", "ilyin", "maksimov",
	"polyakov", "sorokin", "vinogradov", "kovalev", "belov", "medvedev", "antonov",
	"tarasov", "zhukov", "baranov", "filippov", "komarov", "davydov", "belyaev",
	"gerasimov", "bogdanov", "osipov", "sidorov", "matveev", "titov", "markov",
	"mironov", "krylov", "kulikov", "karpov", "vlasov", "melnikov", "denisov",
	"gavrilov", "tikhonov", "kazakov", "afanasyev", "danilov", "savelyev",
	"timofeev", "fomin", "chernov", "abramov", "martynov", "efimov", "fedotov",
	"shcherbakov", "nazarov", "kalinin", "isaev", "chernyshev", "bykov", "maslov",
	"rodionov", "konovalov", "lazarev", "voronin", "klimov", "filatov",
	"ponomarev", "golubev", "kudryavtsev", "prokhorov", "naumov", "potapov",
	"zhuravlev", "ovchinnikov", "trofimov", "leonov", "sobolev", "ermakov",
	"kolesnikov", "goncharov", "emelyanov", "nikiforov", "grachev", "kotov",
	"grishin", "efremov", "arkhipov", "gromov", "kirillov", "malyshev", "panov",
	"moiseev", "rumyantsev", "akimov", "kondratyev", "biryukov", "gorbunov",
	"anisimov", "eremin", "tikhomirov", "galkin", "lukyanov", "mikheev",
	"skvortsov", "yudin", "belousov", "nesterov", "simonov", "prokofyev",
	"kharitonov", "knyazev", "tsvetkov", "levin", "mitrofanov", "voronov",
	"aksenov", "sofronov", "maltsev", "loginov", "gorshkov", "savin", "krasnov",
	"mayorov", "demidov", "eliseev", "rybakov", "safonov", "plotnikov", "demin",
	"khokhlov", "fadeev", "molchanov", "ignatov", "litvinov", "ershov", "ushakov",
	"dementyev", "ryabov", "mukhin", "kalashnikov", "leontyev", "lobanov",
	"kuzin", "korneev", "evdokimov", "borodin", "platonov", "nekrasov",
	"balashov", "bobrov", "zhdanov", "blinov", "ignatyev", "korotkov",
	"muravyov", "kryukov", "belyakov", "bogomolov", "drozdov", "lavrov", "zuev",
	"petukhov", "larin", "nikulin", "serov", "terentyev", "zotov", "ustinov",
	"fokin", "samoilov", "konstantinov", "sakharov", "shishkin", "samsonov",
	"cherkasov", "chistyakov", "nosov", "spiridonov", "karasev", "avdeev",
	"vorontsov", "zverev", "vladimirov", "seleznev", "nechaev", "kudryashov",
	"sedov", "firsov", "andrianov", "panin", "golovin", "terekhov", "ulyanov",
	"shestakov", "ageev", "nikonov", "selivanov", "bazhenov", "gordeev",
	"kozhevnikov", "pakhomov", "zimin", "kostin", "shirokov", "filimonov",
	"larionov", "ovsyannikov", "sazonov", "suvorov", "nefedov", "kornilov",
	"lyubimov", "lvov", "gorbachev", "kopylov", "lukin", "tokarev", "kuleshov",
	"shilov", "bolshakov", "pankratov", "rodin", "shapovalov", "pokrovsky",
	"bocharov", "nikolsky", "markin", "gorelov", "agafonov", "berezin",
	"ermolaev", "zubkov", "kupriyanov", "trifonov", "maslennikov", "kruglov",
	"tretyakov", "kolosov", "rozhkov", "artamonov", "shmelev", "laptev",
	"lapshin", "fedoseev", "zinovyev", "zorin", "utkin", "stolyarov", "zubov",
	"tkachev", "dorofeev", "antipov", "zavyalov", "sviridov", "zolotarev",
	"kulakov", "meshcheryakov", "makeev", "dyakonov", "guryev", "ignatenko",
	"izotov", "dyukanov", "busygin", "krivonos", "smetanin", "kontsedalov",
}

var initials = []string{"a", "b", "d", "e", "f", "g", "i", "k", "l", "m", "n", "o", "p", "r", "s", "t", "v", "ya", "yu", "z"}

// feminineForm turns a masculine surname into the feminine one.
func feminineForm(s string) string {
	n := len(s)
	switch {
	case n > 3 && s[n-3:] == "sky":
		return s[:n-3] + "skaya"
	case n > 2 && (s[n-2:] == "ov" || s[n-2:] == "ev" || s[n-2:] == "in" || s[n-2:] == "yn"):
		return s + "a"
	}
	return s
}
